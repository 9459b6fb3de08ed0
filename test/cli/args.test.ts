/**
 * The gen-gateway argument parser and listen address: defaults, environment, flags and config
 * file, in that order of precedence (README "Command line and config file").
 */
import { describe, expect, it } from 'vitest';
import {
  CliError,
  DEFAULT_HOST,
  DEFAULT_PORT,
  listenAddress,
  parseCli,
  USAGE,
} from '../../src/cli/args.js';

describe('parseCli and listenAddress', () => {
  it('with no flags, environment or config: 127.0.0.1:4000, no config file', () => {
    const cli = parseCli([], {});
    expect(cli).toEqual({ demo: false, help: false, version: false });
    expect(listenAddress(cli, {})).toEqual({ host: '127.0.0.1', port: 4000 });
    expect([DEFAULT_HOST, DEFAULT_PORT]).toEqual(['127.0.0.1', 4000]);
    expect(USAGE).toContain('(env HOST, default 127.0.0.1)');
    expect(USAGE).toContain('(env PORT, default 4000)');
  });

  it('empty environment variables count as unset', () => {
    const cli = parseCli([], { HOST: '', PORT: '', GATEWAY_CONFIG: '', LOG_LEVEL: '' });
    expect(cli).toEqual({ demo: false, help: false, version: false });
    expect(listenAddress(cli, {})).toEqual({ host: DEFAULT_HOST, port: DEFAULT_PORT });
  });

  it('the config file beats the defaults; HOST/PORT beat the config file; flags beat HOST/PORT', () => {
    const config = { host: '0.0.0.0', port: 5000 };
    expect(listenAddress(parseCli([], {}), config)).toEqual({ host: '0.0.0.0', port: 5000 });
    const env = { HOST: '10.0.0.1', PORT: '6000' };
    expect(listenAddress(parseCli([], env), config)).toEqual({ host: '10.0.0.1', port: 6000 });
    expect(listenAddress(parseCli(['--host', '::1', '--port', '7000'], env), config)).toEqual({
      host: '::1',
      port: 7000,
    });
    // Each one on its own: a flag for the port only leaves the host to the environment.
    expect(listenAddress(parseCli(['--port', '0'], env), config)).toEqual({
      host: '10.0.0.1',
      port: 0,
    });
  });

  it('--config wins over GATEWAY_CONFIG; GATEWAY_CONFIG alone is used', () => {
    expect(parseCli(['--config', 'flag.json'], { GATEWAY_CONFIG: 'env.json' }).config).toBe(
      'flag.json',
    );
    expect(parseCli([], { GATEWAY_CONFIG: 'env.json' }).config).toBe('env.json');
    expect(parseCli(['--log-level', 'warn'], { LOG_LEVEL: 'debug' }).logLevel).toBe('warn');
    expect(parseCli([], { LOG_LEVEL: 'debug' }).logLevel).toBe('debug');
  });

  it('--demo turns the demo on; nothing else does (no environment variable)', () => {
    expect(parseCli(['--demo'], {}).demo).toBe(true);
    expect(parseCli(['--demo', '--config', 'gateway.json'], {})).toMatchObject({
      demo: true,
      config: 'gateway.json',
    });
    expect(parseCli([], { DEMO: '1' }).demo).toBe(false);
    // A boolean flag takes no value: `--demo=false` is refused rather than read as on.
    expect(() => parseCli(['--demo=false'], {})).toThrow(CliError);
    expect(USAGE).toContain('--demo');
  });

  it('bad input is a CliError naming the source', () => {
    expect(() => parseCli(['--port', '70000'], {})).toThrow(
      new CliError('--port: invalid port "70000"'),
    );
    expect(() => parseCli([], { PORT: '-1' })).toThrow(new CliError('PORT: invalid port "-1"'));
    expect(() => parseCli(['--nats', 'not a url'], {})).toThrow(CliError);
    expect(() => parseCli(['extra'], {})).toThrow(CliError);
  });
});
