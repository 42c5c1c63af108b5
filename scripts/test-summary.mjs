// Prints the plain closing line CI reads ("N passed, N failed") from a vitest JSON report.
import { readFileSync } from 'node:fs';

const [file, label = 'tests'] = process.argv.slice(2);
const report = JSON.parse(readFileSync(file, 'utf8'));
console.log(`${label}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`);
