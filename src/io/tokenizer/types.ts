/** The tokenizer interface the data pipeline and the model share. */
export interface Tokenizer {
  encode(text: string): number[];
  decode(ids: readonly number[] | Uint32Array): string;
  readonly vocabSize: number;
  /** Id of a special token such as '<|endoftext|>', if the vocabulary has it. */
  tokenId?(special: string): number | undefined;
}
