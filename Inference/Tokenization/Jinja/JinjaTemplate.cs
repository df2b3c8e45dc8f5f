using System.Text;

namespace AspireAi.Inference.Tokenization.Jinja;

/// <summary>
/// A parsed Jinja2 template. Written here because the registry has no .NET Jinja engine (Fluid and Scriban speak Liquid);
/// it covers what chat templates use: expressions with Jinja2's precedence, filters, tests, string and dict methods,
/// slicing, <c>if/elif/else</c>, <c>for</c> with <c>loop.*</c> and <c>else</c>, <c>set</c> (with <c>namespace()</c>), macros,
/// <c>break/continue</c>, and the whitespace rules transformers renders with (<c>trim_blocks</c>, <c>lstrip_blocks</c>).
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<Node> _nodes;

    private JinjaTemplate(List<Node> nodes) => _nodes = nodes;

    /// <exception cref="JinjaException">A syntax error, with its line.</exception>
    public static JinjaTemplate Parse(string source) => new(new JinjaParser(JinjaLexer.Tokenize(source)).ParseTemplate());

    /// <summary>Renders with <paramref name="variables"/> (CLR or <see cref="System.Text.Json.JsonElement"/> values).</summary>
    /// <exception cref="JinjaException">An evaluation error or <c>raise_exception</c>, with its message.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables, Func<DateTime>? now = null)
    {
        var globals = JinjaBuiltins.Globals(now ?? (() => DateTime.Now));
        foreach (var (name, value) in variables)
        {
            globals[name] = JinjaValues.FromObject(value);
        }

        var output = new StringBuilder();
        new JinjaEvaluator(globals, output).Render(_nodes);
        return output.ToString();
    }
}
