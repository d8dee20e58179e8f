#!/usr/bin/env node
// The `envelope` bin: a committed file, so package managers can link it before the first
// build (pnpm warns about a bin it cannot find); the command itself is dist/cli.js.
import "../dist/cli.js";
