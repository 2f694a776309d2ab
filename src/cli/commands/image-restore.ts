/** `provisional image restore NAME@VERSION`: lifts a revocation (see image-revoke.ts). */
export { restore as run } from './image-revoke.js';
