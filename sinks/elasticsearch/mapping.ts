import { ColumnType } from '../shared/column-types';

/**
 * The field that carries each document's full source version (keyword: the
 * fixed-width hex sorts as the version does), for the truncate's
 * delete-by-query; indexed but left out of `_source`, so readers see only the
 * row. (`_cdc_version`, a long, held the older packed version: still excluded.)
 */
export const VERSION_FIELD = '_cdc_source_version';
const LEGACY_VERSION_FIELD = '_cdc_version';
export const VERSION_MAPPING = { type: 'keyword' };

/**
 * An ES field mapping for a column type. Numbers map to double (a column
 * that held only integers so far may hold 1.5 next; a long field would
 * silently truncate it); key columns holding text map to keyword; JSON to
 * flattened, so documents of any shape index without mapping conflicts.
 */
export function fieldMapping(type: ColumnType, isKey: boolean): Record<string, unknown> {
  switch (type) {
    case 'boolean':
      return { type: 'boolean' };
    case 'integer':
    case 'double':
      return { type: 'double' };
    case 'json':
      return { type: 'flattened' };
    case 'text':
      return isKey ? { type: 'keyword' } : { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } };
  }
}

/** The body that creates a table's index: explicit mappings, no guessing of dates or numbers from strings. */
export function indexBody(properties: Record<string, unknown>, alias: string | null): Record<string, unknown> {
  return {
    mappings: {
      dynamic: true,
      date_detection: false,
      numeric_detection: false,
      _source: { excludes: [VERSION_FIELD, LEGACY_VERSION_FIELD] },
      properties: { ...properties, [VERSION_FIELD]: VERSION_MAPPING },
    },
    ...(alias ? { aliases: { [alias]: {} } } : {}),
  };
}
