export { MailStore, type AppendedMessage, type IngestOptions, type Ingested } from './maildir.ts';
export { loadMailQuota, NO_QUOTA, type MailQuota } from './quota.ts';
export { Account, type FolderInfo, type MailboxChange, type Usage } from './account.ts';
export { Folder, type MessageRecord, type StoreMode } from './folder.ts';
export { canonicalSystemFlag, SYSTEM_FLAGS } from './flags.ts';
export { decodeMutf7, DELIMITER, encodeMutf7, MailStoreError, normalizeFolderName, SPECIAL_USE } from './names.ts';
export { withFileLock, writeFileAtomic } from './lock.ts';
export { mailLogin, stillAllowed, type MailLogin, type Principal } from './access.ts';
export { isNoSpace } from './lock.ts';
