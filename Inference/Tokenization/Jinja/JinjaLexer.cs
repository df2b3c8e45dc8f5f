using System.Globalization;
using System.Text;

namespace AspireAi.Inference.Tokenization.Jinja;

internal enum TokenType { Text, ExpressionStart, ExpressionEnd, StatementStart, StatementEnd, Name, String, Integer, Float, Operator, End }

internal readonly record struct JinjaToken(TokenType Type, string Value, int Line);

/// <summary>
/// Splits a template into text and tag tokens with Jinja's whitespace rules as Hugging Face configures them for chat
/// templates (<c>trim_blocks</c> and <c>lstrip_blocks</c> on): a block tag eats the newline after it and the indentation
/// before it; <c>{%-</c>/<c>-%}</c> (and the same on <c>{{ }}</c>) strip all whitespace on that side.
/// </summary>
internal static class JinjaLexer
{
    private static readonly string[] Operators = ["==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    public static List<JinjaToken> Tokenize(string source)
    {
        var tokens = new List<JinjaToken>();
        var pos = 0;
        var line = 1;
        var trimNextText = false; // after a '-%}' / '-}}'
        var dropNewline = false;  // trim_blocks after '%}'
        while (pos < source.Length)
        {
            var open = FindTagOpen(source, pos);
            var textEnd = open < 0 ? source.Length : open;
            var text = source[pos..textEnd];
            if (dropNewline && text.StartsWith('\n'))
            {
                text = text[1..];
            }
            else if (dropNewline && text.StartsWith("\r\n", StringComparison.Ordinal))
            {
                text = text[2..];
            }

            if (trimNextText)
            {
                text = text.TrimStart();
            }

            if (open >= 0)
            {
                var kind = source[open + 1];
                var stripBefore = open + 2 < source.Length && source[open + 2] == '-';
                if (stripBefore)
                {
                    text = text.TrimEnd();
                }
                else if (kind is '%' or '#' && !(open + 2 < source.Length && source[open + 2] == '+'))
                {
                    // lstrip_blocks: spaces and tabs between the start of a line and a block tag go.
                    var start = open;
                    while (start > pos && source[start - 1] is ' ' or '\t')
                    {
                        start--;
                    }

                    var run = open - start;
                    if (run > 0 && run <= text.Length && (start == 0 || source[start - 1] == '\n'))
                    {
                        text = text[..^run];
                    }
                }
            }

            if (text.Length > 0)
            {
                tokens.Add(new JinjaToken(TokenType.Text, text, line));
            }

            line += Count(source.AsSpan(pos, textEnd - pos), '\n');
            if (open < 0)
            {
                break;
            }

            var tagKind = source[open + 1];
            pos = open + 2;
            if (pos < source.Length && source[pos] is '-' or '+')
            {
                pos++;
            }

            if (tagKind == '#')
            {
                var close = source.IndexOf("#}", pos, StringComparison.Ordinal);
                if (close < 0)
                {
                    throw new JinjaException($"line {line}: comment is not closed with '#}}'");
                }

                trimNextText = source[close - 1] == '-';
                dropNewline = true;
                line += Count(source.AsSpan(pos, close - pos), '\n');
                pos = close + 2;
                continue;
            }

            tokens.Add(new JinjaToken(tagKind == '{' ? TokenType.ExpressionStart : TokenType.StatementStart, "", line));
            var closer = tagKind == '{' ? "}}" : "%}";
            pos = LexTag(source, pos, closer, tokens, ref line, out trimNextText);
            tokens.Add(new JinjaToken(tagKind == '{' ? TokenType.ExpressionEnd : TokenType.StatementEnd, "", line));
            dropNewline = tagKind == '%';
        }

        tokens.Add(new JinjaToken(TokenType.End, "", line));
        return tokens;
    }

    private static int Count(ReadOnlySpan<char> s, char c) => s.Count(c);

    private static int FindTagOpen(string source, int from)
    {
        for (var i = source.IndexOf('{', from); i >= 0 && i + 1 < source.Length; i = source.IndexOf('{', i + 1))
        {
            if (source[i + 1] is '{' or '%' or '#')
            {
                return i;
            }
        }

        return -1;
    }

    private static int LexTag(string s, int pos, string closer, List<JinjaToken> tokens, ref int line, out bool trimAfter)
    {
        while (true)
        {
            while (pos < s.Length && char.IsWhiteSpace(s[pos]))
            {
                line += s[pos] == '\n' ? 1 : 0;
                pos++;
            }

            if (pos >= s.Length)
            {
                throw new JinjaException($"line {line}: tag is not closed with '{closer}'");
            }

            if (s[pos] is '-' or '+' && string.CompareOrdinal(s, pos + 1, closer, 0, 2) == 0)
            {
                trimAfter = s[pos] == '-';
                return pos + 3;
            }

            if (string.CompareOrdinal(s, pos, closer, 0, 2) == 0)
            {
                trimAfter = false;
                return pos + 2;
            }

            var c = s[pos];
            if (c is '"' or '\'')
            {
                pos = LexString(s, pos, tokens, line);
            }
            else if (char.IsDigit(c))
            {
                var start = pos;
                while (pos < s.Length && (char.IsDigit(s[pos]) || s[pos] == '_'))
                {
                    pos++;
                }

                if (pos + 1 < s.Length && s[pos] == '.' && char.IsDigit(s[pos + 1]))
                {
                    pos++;
                    while (pos < s.Length && char.IsDigit(s[pos]))
                    {
                        pos++;
                    }

                    tokens.Add(new JinjaToken(TokenType.Float, s[start..pos].Replace("_", ""), line));
                }
                else
                {
                    tokens.Add(new JinjaToken(TokenType.Integer, s[start..pos].Replace("_", ""), line));
                }
            }
            else if (char.IsLetter(c) || c == '_')
            {
                var start = pos;
                while (pos < s.Length && (char.IsLetterOrDigit(s[pos]) || s[pos] == '_'))
                {
                    pos++;
                }

                tokens.Add(new JinjaToken(TokenType.Name, s[start..pos], line));
            }
            else
            {
                var op = Operators.FirstOrDefault(o => string.CompareOrdinal(s, pos, o, 0, o.Length) == 0)
                    ?? throw new JinjaException($"line {line}: unexpected character '{c}'");
                tokens.Add(new JinjaToken(TokenType.Operator, op, line));
                pos += op.Length;
            }
        }
    }

    private static int LexString(string s, int pos, List<JinjaToken> tokens, int line)
    {
        var quote = s[pos++];
        var sb = new StringBuilder();
        while (pos < s.Length && s[pos] != quote)
        {
            if (s[pos] == '\\' && pos + 1 < s.Length)
            {
                pos++;
                switch (s[pos])
                {
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case '\\': sb.Append('\\'); break;
                    case '\'': sb.Append('\''); break;
                    case '"': sb.Append('"'); break;
                    case 'u' when pos + 4 < s.Length:
                        sb.Append((char)int.Parse(s.AsSpan(pos + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                        pos += 4;
                        break;
                    default: sb.Append('\\').Append(s[pos]); break;
                }

                pos++;
            }
            else
            {
                sb.Append(s[pos++]);
            }
        }

        if (pos >= s.Length)
        {
            throw new JinjaException($"line {line}: string is not closed");
        }

        tokens.Add(new JinjaToken(TokenType.String, sb.ToString(), line));
        return pos + 1;
    }
}

/// <summary>A template that cannot be parsed or rendered; the message says where and why.</summary>
public sealed class JinjaException(string message) : Exception(message);
