#!/usr/bin/env node
// The bundled CLI starts fastest (an installed package has only that). In a checkout, the plain
// compiled CLI is used when there is no bundle, or when tsc compiled after the bundle was made
// (`npm run test:unit` compiles without bundling): a stale bundle never runs.
import { existsSync, statSync } from 'node:fs';

const bundled = new URL('../dist/bundle/cli/main.js', import.meta.url);
const compiledAt = (url) => (existsSync(url) ? statSync(url).mtimeMs : 0);
const useBundle = existsSync(bundled) && compiledAt(new URL('../dist/tsconfig.tsbuildinfo', import.meta.url)) <= statSync(bundled).mtimeMs;
const { main } = await import(useBundle ? bundled.href : '../dist/src/cli/main.js');

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
