using System.Globalization;

namespace AspireAi.Inference.Cli;

/// <summary>A wrong command line: printed as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary><c>VERB --help</c> (or <c>-h</c>): the verb's flags are printed instead of running it, exit code 0.</summary>
public sealed class HelpRequestedException(string verb, IEnumerable<string> valueFlags, IEnumerable<string> switches)
    : Exception($"{verb} --help")
{
    public string Usage { get; } =
        $"usage: inference {verb} [--flag value | --flag=value | --switch] ...\n" +
        $"flags: {string.Join(", ", valueFlags.Order(StringComparer.Ordinal).Select(f => $"--{f} VALUE"))}\n" +
        (switches.Any() ? $"switches: {string.Join(", ", switches.Order(StringComparer.Ordinal).Select(f => "--" + f))}\n" : "") +
        "README.md and docs/ describe them.";

    /// <summary>Whether <paramref name="arg"/> asks for help.</summary>
    public static bool IsHelp(string arg) => arg is "--help" or "-h";
}

/// <summary>
/// The flags of one verb (<c>--name value</c>, <c>--name=value</c> or a bare switch), parsed against the set the verb
/// accepts so that an unknown flag or a bad value is a clear error rather than silently ignored.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    public CommandLine(string verb, IReadOnlyList<string> args, IReadOnlySet<string> valueFlags, IReadOnlySet<string>? switches = null)
    {
        Verb = verb;
        switches ??= new HashSet<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (HelpRequestedException.IsHelp(arg))
            {
                throw new HelpRequestedException(verb, valueFlags, switches);
            }

            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"{verb}: unexpected argument '{arg}' (flags start with --).");
            }

            var name = arg[2..];
            string? value = null;
            var eq = name.IndexOf('=');
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }

            if (switches.Contains(name))
            {
                if (value is not null)
                {
                    throw new UsageException($"{verb}: --{name} takes no value.");
                }
            }
            else if (valueFlags.Contains(name))
            {
                if (value is null)
                {
                    if (i + 1 >= args.Count)
                    {
                        throw new UsageException($"{verb}: --{name} needs a value.");
                    }

                    value = args[++i];
                }
            }
            else
            {
                var known = string.Join(", ", valueFlags.Concat(switches).Order().Select(f => "--" + f));
                throw new UsageException($"{verb}: unknown flag --{name} (known: {known}).");
            }

            _values[name] = value;
        }
    }

    public string Verb { get; }

    public bool Has(string name) => _values.ContainsKey(name);

    public string? String(string name) => _values.GetValueOrDefault(name);

    public string RequiredString(string name) =>
        String(name) is { Length: > 0 } value ? value : throw new UsageException($"{Verb}: --{name} is required.");

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        if (String(name) is not { } text)
        {
            return fallback;
        }

        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw new UsageException($"{Verb}: --{name} must be an integer in [{min}, {max}], not '{text}'.");
        }

        return value;
    }

    public float Float(string name, float fallback, float min = float.MinValue, float max = float.MaxValue)
    {
        if (String(name) is not { } text)
        {
            return fallback;
        }

        if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !(value >= min && value <= max))
        {
            throw new UsageException($"{Verb}: --{name} must be a number in [{min}, {max}], not '{text}'.");
        }

        return value;
    }

    public string Choice(string name, string fallback, params string[] allowed)
    {
        var value = String(name) ?? fallback;
        return allowed.Contains(value) ? value : throw new UsageException($"{Verb}: --{name} must be one of {string.Join(", ", allowed)}, not '{value}'.");
    }

    public int[] IntList(string name)
    {
        var text = RequiredString(name);
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var result = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out result[i]) || result[i] < 0)
            {
                throw new UsageException($"{Verb}: --{name} must be comma-separated token ids, and '{parts[i]}' is not one.");
            }
        }

        return result;
    }
}
