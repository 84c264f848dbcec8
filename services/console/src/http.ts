import type http from 'node:http';

/** The console's HTTP codec: request bodies (urlencoded and multipart forms) in, pages and redirects out. */

/** The largest form accepted (an uploaded manifest included). */
export const MAX_FORM_BYTES = 256 * 1024;

export interface UploadedFile {
  filename: string;
  content: Buffer;
}

export class Form {
  constructor(
    readonly fields: URLSearchParams,
    private readonly files = new Map<string, UploadedFile>(),
  ) {}

  /** A field's value, trimmed of nothing: '' when absent. */
  get(name: string): string {
    return this.fields.get(name) ?? '';
  }

  getAll(name: string): string[] {
    return this.fields.getAll(name);
  }

  file(name: string): UploadedFile | undefined {
    return this.files.get(name);
  }
}

export class BadRequest extends Error {}

async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new BadRequest('the form is too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BadRequest('the form is too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** multipart/form-data (RFC 7578): parts split on the boundary, each with a Content-Disposition naming it. */
export function parseMultipart(body: Buffer, boundary: string): Form {
  const fields = new URLSearchParams();
  const files = new Map<string, UploadedFile>();
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new BadRequest('malformed multipart form');
  for (;;) {
    pos += delimiter.length;
    if (body.subarray(pos, pos + 2).toString() === '--') break;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    const next = body.indexOf(delimiter, pos);
    if (headerEnd < 0 || next < 0 || headerEnd > next) throw new BadRequest('malformed multipart form');
    const headers = body.subarray(pos, headerEnd).toString('utf8');
    const content = body.subarray(headerEnd + 4, next - 2);
    const disposition = /content-disposition:\s*form-data;([^\r\n]*)/i.exec(headers)?.[1] ?? '';
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1];
    const filename = /\bfilename="([^"]*)"/i.exec(disposition)?.[1];
    if (name !== undefined) {
      if (filename !== undefined) files.set(name, { filename, content });
      else fields.append(name, content.toString('utf8'));
    }
    pos = next;
  }
  return new Form(fields, files);
}

/** The request's form: urlencoded or multipart; anything else is refused. */
export async function readForm(req: http.IncomingMessage): Promise<Form> {
  const type = req.headers['content-type'] ?? '';
  const body = await readBody(req, MAX_FORM_BYTES);
  if (/^application\/x-www-form-urlencoded\b/i.test(type)) return new Form(new URLSearchParams(body.toString('utf8')));
  const boundary = /^multipart\/form-data;.*\bboundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
  if (boundary) return parseMultipart(body, boundary[1] ?? boundary[2]!);
  throw new BadRequest('forms must be sent as application/x-www-form-urlencoded or multipart/form-data');
}

export function sendHtml(res: http.ServerResponse, status: number, html: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-store', ...headers });
  res.end(html);
}

export function redirect(res: http.ServerResponse, location: string, cookies: string[] = []): void {
  res.writeHead(303, { Location: location, 'Cache-Control': 'no-store', ...(cookies.length ? { 'Set-Cookie': cookies } : {}) });
  res.end();
}
