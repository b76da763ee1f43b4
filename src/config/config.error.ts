/** Thrown at boot when the environment does not match the schema; its message is one line. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}
