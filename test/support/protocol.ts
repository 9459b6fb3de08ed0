/**
 * The protocol/ documents as tests read them: its JSON files (vectors) and every JSON Schema in
 * protocol/schemas, compiled once per test file.
 */
import { readFileSync, readdirSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';

const dir = new URL('../../protocol/', import.meta.url);

/** A JSON file under protocol/, e.g. `vectors/relay.json`. */
export function loadProtocol(path: string): unknown {
  return JSON.parse(readFileSync(new URL(path, dir), 'utf8'));
}

/** The schema files in protocol/schemas. */
export const SCHEMA_FILES: readonly string[] = readdirSync(new URL('schemas/', dir));

// ajv is CommonJS: under NodeNext its class is the default export's `default`.
const ajv = new Ajv2020Module.default({ allErrors: true, strict: false });
for (const file of SCHEMA_FILES) ajv.addSchema(loadProtocol(`schemas/${file}`) as object, file);

/** Whether the schema `file` compiled. */
export function hasSchema(file: string): boolean {
  return ajv.getSchema(file) !== undefined;
}

/** 'valid', or the schema's errors as JSON (so a failing expectation shows them); throws without such a schema. */
export function conforms(file: string, value: unknown): string {
  const validate = ajv.getSchema(file);
  if (!validate) throw new Error(`no schema ${file}`);
  return validate(value) ? 'valid' : JSON.stringify(validate.errors);
}
