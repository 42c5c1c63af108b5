export * from './errors.js';
export * from './names.js';
export * from './ids.js';
export * from './clock.js';
export * from './domain.js';
