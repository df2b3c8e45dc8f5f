using AspireAi.Inference.Tokenization.Jinja;

namespace AspireAi.Inference.Tests.Tokenization.Jinja;

public sealed class JinjaTemplateTests
{
    private static string Render(string template, object? vars = null)
    {
        var variables = vars is null ? new Dictionary<string, object?>()
            : vars.GetType().GetProperties().ToDictionary(p => p.Name, p => p.GetValue(vars));
        return JinjaTemplate.Parse(template).Render(variables, () => new DateTime(2024, 7, 26));
    }

    [Theory]
    [InlineData("{% for x in items %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.length }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %};{% endfor %}", "1/0/3F;2/1/3;3/2/3L;")]
    [InlineData("{% for x in items if x != 'b' %}{{ x }}{% else %}none{% endfor %}", "ac")]
    [InlineData("{% for x in [] %}{{ x }}{% else %}none{% endfor %}", "none")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }},{% endfor %}", "a=1,b=2,")]
    [InlineData("{% for k, v in {'a': 1} | items %}{{ k }}{{ v }}{% endfor %}", "a1")]
    [InlineData("{% set ns = namespace(n=0) %}{% for x in items %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}", "3")]
    [InlineData("{% set n = 0 %}{% for x in items %}{% set n = n + 1 %}{% endfor %}{{ n }}", "0")]
    [InlineData("{% if 1 > 2 %}a{% elif 2 > 1 %}b{% else %}c{% endif %}", "b")]
    [InlineData("{{ items[1:] }}|{{ items[::-1] | join('') }}|{{ items[-1] }}|{{ 'hello'[1:3] }}", "['b', 'c']|cba|c|el")]
    [InlineData("{{ 'a' ~ 1 ~ none }}|{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 3 }}|{{ 7 / 2 }}", "a1None|7|3|1|8|3.5")]
    [InlineData("{{ '  x  ' | trim }}|{{ 'ab' | upper }}|{{ 'AB' | lower }}|{{ items | length }}|{{ items | first }}{{ items | last }}", "x|AB|ab|3|ac")]
    [InlineData("{{ missing | default('d') }}|{{ '' | default('e', true) }}|{{ 'x' | default('f') }}", "d|e|x")]
    [InlineData("{{ {'b': [1, 'x', true, none], 'a': 1.5} | tojson }}", "{\"b\": [1, \"x\", true, null], \"a\": 1.5}")]
    [InlineData("{{ {'a': [1]} | tojson(indent=2) }}", "{\n  \"a\": [\n    1\n  ]\n}")]
    [InlineData("{{ 'é\"\n' | tojson }}", "\"é\\\"\\n\"")]
    [InlineData("{{ people | selectattr('age', 'gt', 30) | map(attribute='name') | join(',') }}|{{ people | rejectattr('admin') | map(attribute='name') | list }}", "bob|['ann']")]
    [InlineData("{{ people | selectattr('admin') | list | length }}|{{ people | selectattr('name', 'equalto', 'ann') | first }}", "1|{'name': 'ann', 'age': 30, 'admin': False}")]
    [InlineData("{{ '  a b  '.strip() }}|{{ 'xxhixx'.lstrip('x') }}|{{ 'xxhixx'.rstrip('x') }}|{{ 'hello'.startswith('he') }}|{{ 'hello'.endswith(('x', 'lo')) }}", "a b|hixx|xxhi|True|True")]
    [InlineData("{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'hello world'.title() }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}|{{ 'aXa'.replace('a', 'b') }}", "['a', 'b', '', 'c']|['a', 'b']|Hello World|ABab|bXb")]
    [InlineData("{{ d.get('a') }}|{{ d.get('z', 'dflt') }}|{{ d.get('z') }}|{{ d['a'] }}|{{ d.a }}", "1|dflt|None|1|1")]
    [InlineData("{{ 'b' in items }}|{{ 'z' not in items }}|{{ 'ell' in 'hello' }}|{{ 'a' in d }}", "True|True|True|True")]
    [InlineData("{{ x is defined }}|{{ missing is defined }}|{{ none is none }}|{{ 'a' is string }}|{{ d is mapping }}|{{ items is iterable }}|{{ 3 is equalto 3 }}", "True|False|True|True|True|True|True")]
    [InlineData("{{ 'yes' if x else 'no' }}|{{ 'yes' if missing else 'no' }}|{{ 'a' if false }}", "yes|no|")]
    [InlineData("{{ '5' | int + 1 }}|{{ 3 | string ~ '!' }}|{{ 'line1\nline2' | indent(2) }}|{{ 'a-b' | replace('-', '+') }}", "6|3!|line1\n  line2|a+b")]
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', punct='?') }}", "Hi Ann! Hi Bob?")]
    [InlineData("{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}", "02")]
    [InlineData("{% set y %}cap{{ 1 }}{% endset %}{{ y }}", "cap1")]
    [InlineData("{{ strftime_now('%d %b %Y') }}", "26 Jul 2024")]
    [InlineData("{# comment #}a{#- trimmed -#} b", "ab")]
    public void Expressions_statements_and_filters(string template, string expected)
    {
        var vars = new
        {
            items = new List<object?> { "a", "b", "c" },
            x = 1,
            d = new Dictionary<string, object?> { ["a"] = 1 },
            people = new List<object?>
            {
                new Dictionary<string, object?> { ["name"] = "ann", ["age"] = 30, ["admin"] = false },
                new Dictionary<string, object?> { ["name"] = "bob", ["age"] = 40, ["admin"] = true },
            },
        };
        Assert.Equal(expected, Render(template, vars));
    }

    [Theory]
    // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before one; '-' strips all whitespace.
    [InlineData("{% if true %}\n  yes\n{% endif %}\n", "  yes\n")]
    [InlineData("a\n    {% if true %}\nb\n    {% endif %}\nc", "a\nb\nc")]
    [InlineData("a  {%- if true -%}  b  {%- endif -%}  c", "abc")]
    [InlineData("{{ 'x' }}\n{{ 'y' }}", "x\ny")]
    [InlineData("a\n  {{- 'b' -}}\n  c", "abc")]
    public void Whitespace_control_matches_transformers(string template, string expected) => Assert.Equal(expected, Render(template));

    [Theory]
    [InlineData("{{ raise_exception('Only user and assistant roles are supported!') }}", "Only user and assistant roles are supported!")]
    [InlineData("{% if %}", "line 1")]
    [InlineData("line1\n{% for x in %}", "line 2")]
    [InlineData("{{ x | nosuchfilter }}", "unknown filter 'nosuchfilter'")]
    [InlineData("{% if true %}never closed", "endif")]
    [InlineData("{{ 'a' + 1 }}", "cannot add string and int")]
    public void Errors_say_what_and_where(string template, string expected)
    {
        var error = Assert.Throws<JinjaException>(() => Render(template));
        Assert.Contains(expected, error.Message);
    }
}
