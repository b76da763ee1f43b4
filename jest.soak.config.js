import base from './jest.config.js';

/** `npm run soak`: the fault soak under test/soak, never part of `npm test`. */
export default {
  ...base,
  testMatch: ['<rootDir>/test/soak/**/*.soak.ts'],
  maxWorkers: 1,
};
