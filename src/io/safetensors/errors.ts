/**
 * Every problem with a safetensors file or a checkpoint directory is a SafetensorsError whose message names
 * the file, the tensor (when there is one), the value found and what was expected.
 */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
  constructor(
    message: string,
    readonly file: string,
    readonly tensor?: string,
  ) {
    super(tensor === undefined ? `${file}: ${message}` : `${file}: tensor '${tensor}': ${message}`);
  }
}
