export { MailStore } from './maildir.ts';
