namespace AspireAi.Inference.Tokenization;

/// <summary>What a vocabulary entry is, numbered as GGUF's <c>tokenizer.ggml.token_type</c> (llama.cpp's <c>llama_token_type</c>).</summary>
public enum TokenKind
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    /// <summary>Control tokens (<c>&lt;s&gt;</c>, <c>&lt;|im_end|&gt;</c>…): never produced from plain text unless special parsing is on; hidden when decoding unless asked.</summary>
    Control = 3,
    /// <summary>Added tokens always matched as a whole in text (as Hugging Face's non-special added tokens).</summary>
    UserDefined = 4,
    Unused = 5,
    /// <summary>SentencePiece byte-fallback pieces <c>&lt;0xNN&gt;</c>.</summary>
    Byte = 6,
}

/// <summary>
/// Text ↔ token ids, exactly as the model's own tokenizer (llama.cpp's results on the same vocabulary). Thread-safe:
/// one instance serves every request.
/// </summary>
public interface ITokenizer
{
    int VocabularySize { get; }

    /// <summary>Beginning-of-sequence id, or -1 when the vocabulary has none.</summary>
    int BosId { get; }

    /// <summary>End-of-sequence id, or -1 when the vocabulary has none.</summary>
    int EosId { get; }

    /// <summary>Every id that ends generation: EOS plus end-of-turn tokens such as <c>&lt;|eot_id|&gt;</c> or <c>&lt;|im_end|&gt;</c>.</summary>
    IReadOnlySet<int> EndOfGenerationIds { get; }

    /// <summary>Whether <see cref="Encode"/> with <c>addSpecial</c> puts BOS first / EOS last (the model's own setting).</summary>
    bool AddBos { get; }

    bool AddEos { get; }

    /// <summary>Tokenizes <paramref name="text"/>.</summary>
    /// <param name="addSpecial">Add BOS/EOS as the model asks (<see cref="AddBos"/>/<see cref="AddEos"/>).</param>
    /// <param name="parseSpecial">Match control tokens written in the text (<c>&lt;|im_start|&gt;</c>) as single tokens; otherwise
    /// they are tokenized as plain text. User-defined added tokens are always matched.</param>
    int[] Encode(ReadOnlySpan<char> text, bool addSpecial = true, bool parseSpecial = true);

    /// <summary>The text of <paramref name="ids"/>; control tokens are left out unless <paramref name="includeSpecial"/>.
    /// Pieces are concatenated as they are (a SentencePiece prompt decodes with its leading dummy-prefix space).</summary>
    string Decode(ReadOnlySpan<int> ids, bool includeSpecial = false);

    /// <summary>The bytes token <paramref name="id"/> stands for in text (UTF-8, possibly part of a character); empty for
    /// control tokens unless <paramref name="includeSpecial"/>.</summary>
    ReadOnlySpan<byte> TokenBytes(int id, bool includeSpecial = false);

    /// <summary>The vocabulary entry as stored (<c>▁the</c>, <c>Ġthe</c>, <c>&lt;0x0A&gt;</c>, <c>&lt;|im_end|&gt;</c>).</summary>
    string TokenToPiece(int id);

    /// <summary>The id of a vocabulary entry written as stored, or -1.</summary>
    int PieceToId(string piece);

    TokenKind GetKind(int id);
}
