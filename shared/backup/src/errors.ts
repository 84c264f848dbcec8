/** A backup or restore that could not be done; the message is one line for the operator. */
export class BackupError extends Error {}
