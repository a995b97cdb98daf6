/**
 * The `nimbus` command. `main(argv)` returns the exit code; only bin/nimbus
 * calls process.exit. Long-running commands (dev) resolve when they stop.
 */
import { Command, CommanderError } from 'commander';
import { processIo, type Io } from './output.js';
import { registerDev } from './dev.js';
import { registerInvoke } from './invoke.js';
import { registerServer } from './server.js';
import { registerDeploy } from './deploy.js';
import { registerEventCommands, registerMessagingCommands, registerServiceCommands } from './service.js';

/** The version `nimbus --version` prints (package.json's). */
export const VERSION = '0.1.0';

/** Runs the CLI with `argv` (without `node` and the script). Resolves with the exit code. */
export function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  return new Promise((resolve) => {
    let finished = false;
    const done = (code: number) => { if (!finished) { finished = true; resolve(code); } };
    const program = new Command('nimbus')
      .description('Self-hosted serverless platform: Lambda-style functions behind an API Gateway-compatible gateway')
      .version(VERSION)
      // Program options only before the command: `nimbus rollback --version 3` is rollback's own --version.
      .enablePositionalOptions()
      .exitOverride()
      .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
      .showHelpAfterError('(run with --help for usage)');
    registerDev(program, io, done);
    registerInvoke(program, io, done);
    registerServer(program, io, done);
    registerDeploy(program, io, done);
    registerServiceCommands(program, io, done);
    registerEventCommands(program, io, done);
    registerMessagingCommands(program, io, done);
    program.parseAsync([...argv], { from: 'user' }).then(() => {
      // A command with no action of its own (no sub-command given) ends here.
      if (argv.length === 0) { program.outputHelp(); done(0); }
    }, (e: unknown) => {
      if (e instanceof CommanderError) done(e.exitCode);
      else { io.err(String((e as Error)?.stack ?? e) + '\n'); done(1); }
    });
  });
}
