export { mailboxes, parseAddressList, type Address, type Mailbox } from './addresses.ts';
export { headerEnd, headerFields, headerValues, removeHeaderFields } from './headers.ts';
export { childrenOf, encodeBinaryParts, header, parseContentType, parseHeaders, parseMessage, splitParams, toCrlf, type ContentType, type HeaderField, type MimePart } from './mime.ts';
export { bodyText, decodedContent, partText } from './body.ts';
export { parseHeaderDate, type HeaderDate } from './date.ts';
export { decodeWords } from './words.ts';
