#!/usr/bin/env node
// `relay <command>` once the package is installed (npm install -g, npm link): the control-plane CLI of
// src/cli/relay.ts (`npm run cli -- <command>` in a checkout), its TypeScript loaded through tsx.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/relay.ts');
process.exit(await main(process.argv.slice(2)));
