/**
 * The integration tier: the production code against moto's server (a real AWS wire protocol). One
 * emulator per run (global setup), files one at a time (they share it, and each resets it first).
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/integration'],
  testMatch: ['**/*.itest.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }],
  },
  globalSetup: '<rootDir>/test/integration/global-setup.ts',
  globalTeardown: '<rootDir>/test/integration/global-teardown.ts',
  setupFiles: ['<rootDir>/test/drop-sdk-node-warning.js', '<rootDir>/test/integration/env.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/integration/setup-each-suite.ts'],
  maxWorkers: 1,
  testTimeout: 120000,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
