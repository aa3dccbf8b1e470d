import { describe, expect, it } from 'vitest';
import { nameFromFile } from './upload';

describe('nameFromFile', () => {
  it('turns file names into valid model names', () => {
    expect(nameFromFile('Llama-3.2 1B Q8_0.gguf')).toBe('llama-3.2-1b-q8_0');
    expect(nameFromFile('--weird.GGUF')).toBe('weird');
    expect(nameFromFile('.gguf')).toBe('model');
  });
});
