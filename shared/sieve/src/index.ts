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
export { ScriptStore, ScriptStoreError, type ScriptLimits } from './store.ts';
export { MAX_REDIRECTS, redirectAddress, runScript, SieveRuntimeError, type RunOptions, type SieveAction, type SieveMessage } from './interpret.ts';
export { decideVacation, VacationLog, type VacationAction, type VacationDecision } from './vacation.ts';
