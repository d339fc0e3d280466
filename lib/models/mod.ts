/** Every model family, registered with the registry on import. */
export * from "./registry.ts";
