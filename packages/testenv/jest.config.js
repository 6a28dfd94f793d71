import preset from "../../jest.preset.js";

export default {
  ...preset,
  displayName: "testenv",
  globalSetup: "<rootDir>/src/jest-global-setup.ts",
  globalTeardown: "<rootDir>/src/jest-global-teardown.ts",
};
