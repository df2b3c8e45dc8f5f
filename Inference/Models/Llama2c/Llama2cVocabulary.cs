using System.Buffers.Binary;
using System.Text;
using AspireAi.Inference.Tokenization;

namespace AspireAi.Inference.Models.Llama2c;

/// <summary>
/// A llama2.c <c>tokenizer.bin</c> (int32 max piece length, then per piece: float32 score, int32 length, the bytes) turned
/// into GGUF's SentencePiece vocabulary. llama2.c's export wrote pieces for its C decoder, not as SentencePiece stores them:
/// the 256 byte-fallback pieces (ids 3–258) as the character U+0000–U+00FF of the byte they stand for (UTF-8: one byte
/// below 0x80, two above), BOS/EOS as <c>"\n&lt;s&gt;\n"</c> /
/// <c>"\n&lt;/s&gt;\n"</c>, and a plain space where SentencePiece writes U+2581. This undoes each of those.
/// </summary>
internal sealed record Llama2cVocabulary(string[] Tokens, float[] Scores, int[] Types, int BosId, int EosId, int UnknownId)
{
    // SentencePiece's byte pieces follow <unk>, <s>, </s>.
    private const int FirstBytePiece = 3;
    private const char SentencePieceSpace = '\u2581';

    public static Llama2cVocabulary Read(string path, int vocabularySize)
    {
        var bytes = File.ReadAllBytes(path);
        var position = 0;
        ReadOnlySpan<byte> Take(int count, int piece, string what)
        {
            if (count > bytes.Length - position)
            {
                throw new ModelFormatException(path, piece < 0 ? null : $"piece {piece}", $"file is truncated: {what} needs {count} bytes at offset {position}, only {bytes.Length - position} remain");
            }

            position += count;
            return bytes.AsSpan(position - count, count);
        }

        var maxLength = BinaryPrimitives.ReadInt32LittleEndian(Take(4, -1, "the maximum piece length"));
        if (maxLength <= 0)
        {
            throw new ModelFormatException(path, null, $"maximum piece length {maxLength} is not positive");
        }

        var tokens = new string[vocabularySize];
        var scores = new float[vocabularySize];
        var types = new int[vocabularySize];
        int bos = -1, eos = -1, unknown = -1;
        var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
        for (var id = 0; id < vocabularySize; id++)
        {
            scores[id] = BinaryPrimitives.ReadSingleLittleEndian(Take(4, id, "the score"));
            var length = BinaryPrimitives.ReadInt32LittleEndian(Take(4, id, "the length"));
            if (length < 0 || length > maxLength)
            {
                throw new ModelFormatException(path, $"piece {id}", $"length {length} is outside 0..{maxLength} (the file's maximum)");
            }

            var piece = Take(length, id, "the piece");
            (tokens[id], var kind) = Map(piece, id);
            types[id] = (int)kind;
            switch (kind)
            {
                case TokenKind.Control when tokens[id] == "<s>":
                    bos = id;
                    break;
                case TokenKind.Control:
                    eos = id;
                    break;
                case TokenKind.Unknown:
                    unknown = id;
                    break;
            }
        }

        if (position != bytes.Length)
        {
            throw new ModelFormatException(path, null, $"has {bytes.Length - position} bytes after its {vocabularySize} pieces (the checkpoint's vocabulary size)");
        }

        if (bos < 0 || eos < 0 || unknown < 0)
        {
            throw new ModelFormatException(path, null, "lacks one of <unk>, \"\\n<s>\\n\" and \"\\n</s>\\n\", which llama2.c vocabularies always have");
        }

        return new Llama2cVocabulary(tokens, scores, types, bos, eos, unknown);

        (string, TokenKind) Map(ReadOnlySpan<byte> piece, int id)
        {
            if (piece.SequenceEqual("\n<s>\n"u8))
            {
                return ("<s>", TokenKind.Control);
            }

            if (piece.SequenceEqual("\n</s>\n"u8))
            {
                return ("</s>", TokenKind.Control);
            }

            if (piece.SequenceEqual("<unk>"u8))
            {
                return ("<unk>", TokenKind.Unknown);
            }

            string text;
            try
            {
                text = strict.GetString(piece);
            }
            catch (DecoderFallbackException)
            {
                throw new ModelFormatException(path, $"piece {id}", $"is not valid UTF-8 ({Convert.ToHexString(piece)})");
            }

            // The trap: id 3 + b holds the character U+00bb (one byte below 0x80, two above), which collides with ordinary
            // one-character pieces; SentencePiece's byte piece for b is <0xBB>.
            if (id - FirstBytePiece is >= 0 and <= 0xFF && text.Length == 1 && text[0] == id - FirstBytePiece)
            {
                return ($"<0x{id - FirstBytePiece:X2}>", TokenKind.Byte);
            }

            // Newer exports keep byte pieces as SentencePiece's "<0xAB>" text.
            if (text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal) && text[5] == '>' &&
                byte.TryParse(text.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out _))
            {
                return (text, TokenKind.Byte);
            }

            return (text.Replace(' ', SentencePieceSpace), TokenKind.Normal);
        }
    }
}
