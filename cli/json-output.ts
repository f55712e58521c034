import { ConfigError, loadConfig } from '../config/load';

/** `cdc --help` epilog: what each exit code means (scripts and CI rely on them). */
export const EXIT_CODES_HELP = `
Exit codes:
  0  success (validate: the config is valid; verify: no differences; a request was accepted)
  1  failure: invalid config, the service unreachable, a request refused (the message on stderr says why)
  2  cdc verify found differences between a source and a sink; cdc dead-letters replay left events that failed again

Every command but run takes --json for output a script can parse (status --watch --json: one JSON line per interval).
Shell completion: eval "$(cdc completion bash)" or source <(cdc completion zsh).`;

/** `cdc validate --json`: the verdict as JSON on stdout, exit 1 when invalid. */
export function validateJson(file: string): void {
  try {
    const config = loadConfig(file);
    process.stdout.write(JSON.stringify({ file, valid: true, sources: config.sources.map((s) => s.name), sinks: config.sinks.map((s) => s.name) }, null, 2) + '\n');
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stdout.write(JSON.stringify({ file, valid: false, error: error.message }, null, 2) + '\n');
    process.exitCode = 1;
  }
}
