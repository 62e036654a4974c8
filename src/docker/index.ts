/** Docker engine wrappers used by the docker operator (and later by recovery and deployment). */
export * from './auth.js';
export * from './containers.js';
export * from './engine.js';
export * from './images.js';
export * from './units.js';
