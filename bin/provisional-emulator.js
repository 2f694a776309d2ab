#!/usr/bin/env node
// Cloud API emulators (DigitalOcean, AWS EC2) for trying Provisional, and other clients, with no account.
import { main } from '../dist/src/emulators/main.js';

main(process.argv.slice(2)).then((code) => {
  if (typeof code === 'number') process.exitCode = code;
});
