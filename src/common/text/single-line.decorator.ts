import { ValidateBy } from 'class-validator';

/**
 * For fields shown on one line (names, mail subjects): no tab, line feed or
 * carriage return. Non-strings pass, so a missing field gets only its own message.
 */
export const SingleLine = (): PropertyDecorator =>
  ValidateBy({
    name: 'singleLine',
    validator: {
      validate: (value: unknown) => typeof value !== 'string' || !/[\t\n\r]/.test(value),
      defaultMessage: (args) =>
        `${args?.property ?? 'value'} must be a single line (no tab, line feed or carriage return)`,
    },
  });
