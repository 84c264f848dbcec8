export * from './apps.ts';
export * from './engine.ts';
export * from './names.ts';
export * from './settings.ts';
export * from './spec.ts';
export * from './attach.ts';
