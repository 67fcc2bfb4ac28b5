// Entry of the `lora-studio` CLI: dispatches to a command, prints user errors without stack traces.
import { parseArgs } from 'node:util';
import { WebGpuUnavailableError } from '../gpu/acquire';
import { UsageError } from './command';
import { COMMANDS } from './commands/index';

const HELP = `lora-studio: LoRA fine-tuning on WebGPU, in Node

usage: lora-studio <command> [flags]      lora-studio <command> --help

commands:`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines = await Promise.all(
      Object.entries(COMMANDS).map(async ([n, load]) => `  ${n.padEnd(18)} ${(await load()).summary}`),
    );
    console.log(`${HELP}\n${lines.join('\n')}`);
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) throw new UsageError(`unknown command "${name}"; see lora-studio --help`);
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`lora-studio ${name}: ${cmd.summary}\n\n${cmd.usage}`);
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: cmd.options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\nsee lora-studio ${name} --help`);
  }
  return cmd.run(parsed.values, parsed.positionals);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof WebGpuUnavailableError) console.error(`error: ${e.message}\n${e.advice}`);
    else if (e instanceof UsageError) console.error(`error: ${e.message}`);
    else if (e instanceof Error && process.env.LORA_STUDIO_DEBUG === undefined)
      console.error(`error: ${e.message}`);
    else console.error(e);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
