// Module hook of register.mjs: `@node-rs/argon2` resolves to the stub, except from the stub itself.
const stub = new URL('./argon2.mjs', import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier === '@node-rs/argon2' && context.parentURL !== stub) return { url: stub, shortCircuit: true };
  return next(specifier, context);
}
