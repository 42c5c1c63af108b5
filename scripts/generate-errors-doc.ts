/** Prints the table rows of docs/errors.md from the code (the test in test/server/errors-doc.test.ts checks them). */
import { ERROR_CODES, type ErrorCode } from '../src/core/errors.js';
import { HTTP_STATUS } from '../src/server/error-mapper.js';

for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
  console.log(`| \`${code}\` | ${HTTP_STATUS[code]} | ${ERROR_CODES[code]} |`);
}
