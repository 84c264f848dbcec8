export { parseScript, SieveSyntaxError, type Argument, type Command, type Test } from './parser.ts';
export { EXTENSIONS, validateScript } from './validate.ts';
import { parseScript, type Command } from './parser.ts';
import { validateScript } from './validate.ts';

/** Parses and validates a script (what PUTSCRIPT/CHECKSCRIPT and delivery use); throws SieveSyntaxError with the line. */
export function compileScript(src: string): Command[] {
  const cmds = parseScript(src);
  validateScript(cmds);
  return cmds;
}

const COMPILED_MAX = 128;
const compiled = new Map<string, Command[]>();

/**
 * compileScript, remembered per script text: delivery compiles a mailbox's active script once,
 * not once per message; an edited script is other text, so it is compiled afresh. The least
 * recently used of more than 128 scripts are forgotten. The commands are only read by runScript.
 */
export function compileScriptCached(src: string): Command[] {
  let cmds = compiled.get(src);
  if (cmds) compiled.delete(src);
  else cmds = compileScript(src);
  compiled.set(src, cmds);
  if (compiled.size > COMPILED_MAX) compiled.delete(compiled.keys().next().value!);
  return cmds;
}
export { ScriptStore, ScriptStoreError, type ScriptLimits } from './store.ts';
export { messageBody, type BodyTransform } from './body.ts';
export { globMatch, MAX_REDIRECTS, redirectAddress, runScript, SieveRuntimeError, type RunOptions, type SieveAction, type SieveMessage } from './interpret.ts';
export { decideVacation, VacationLog, type VacationAction, type VacationDecision } from './vacation.ts';
