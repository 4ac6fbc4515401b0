export * from './constants.js';
export * from './errors.js';
export * from './schemas.js';
export * from './realtime.js';
export * from './widget-protocol.js';
export * from './console.js';
export * from './case-types.js';
export * from './portal.js';
