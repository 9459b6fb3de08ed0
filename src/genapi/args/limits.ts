/**
 * Global argument limits (PhoenixGenApi's argument_handler config); an arg spec's own limits
 * replace them.
 */
export interface ArgLimits {
  /** Max UTF-8 bytes of a string argument, a string inside a list or map, a list_string item. */
  stringMaxBytes: number;
  /** Max items of a list argument (all list types) and of a list nested in a map. */
  listMaxItems: number;
  /** Max keys of a map argument. */
  mapMaxItems: number;
}

/** PhoenixGenApi's defaults: 3000 bytes, 1000 list items, 1000 map keys. */
export const DEFAULT_ARG_LIMITS: ArgLimits = Object.freeze({
  stringMaxBytes: 3000,
  listMaxItems: 1000,
  mapMaxItems: 1000,
});
