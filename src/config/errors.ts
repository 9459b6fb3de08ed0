/** An option with a wrong type or value; the message names the option. */
export class OptionError extends TypeError {
  override readonly name = 'OptionError';
}

/** A config file that cannot be read, parsed or validated. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
