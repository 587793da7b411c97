/** The tokenizer interface the data pipeline and the model share. */
export interface Tokenizer {
  /** Text to ids; special-token strings in the text are encoded as plain text. */
  encode(text: string): number[];
  decode(ids: readonly number[] | Uint32Array): string;
  readonly vocabSize: number;
  /** Id of a special token such as '<|endoftext|>', if the vocabulary has it. */
  tokenId?(special: string): number | undefined;
  /** Text to ids where special-token strings (as a chat template writes them) become their ids. */
  encodeWithSpecial?(text: string): number[];
  /** What tokenizer_config.json adds: the chat template and the bos / eos tokens. */
  config?: TokenizerConfig;
}

export interface TokenizerConfig {
  /** Jinja source of `chat_template` (the 'default' one when the file lists several). */
  chatTemplate?: string;
  bosToken?: string;
  eosToken?: string;
  bosTokenId?: number;
  eosTokenId?: number;
}
