using System.Globalization;
using System.Text;
using static AspireAi.Inference.Tokenization.Jinja.JinjaValues;

namespace AspireAi.Inference.Tokenization.Jinja;

/// <summary>
/// Renders a parsed template: statements write to the output, expressions evaluate over scopes (a for loop and a macro
/// body get their own, as in Jinja, so <c>set</c> inside a loop does not leak out — that is what <c>namespace()</c> is for).
/// </summary>
internal sealed class JinjaEvaluator
{
    private readonly List<Dictionary<string, object?>> _scopes;
    private readonly StringBuilder _output;

    public JinjaEvaluator(Dictionary<string, object?> globals, StringBuilder output)
    {
        _scopes = [globals];
        _output = output;
    }

    private sealed class LoopControl(bool isBreak) : Exception
    {
        public bool IsBreak { get; } = isBreak;
    }

    public void Render(List<Node> nodes)
    {
        foreach (var node in nodes)
        {
            Execute(node);
        }
    }

    private void Execute(Node node)
    {
        switch (node)
        {
            case TextNode t:
                _output.Append(t.Text);
                break;
            case OutputNode o:
                _output.Append(ToText(Eval(o.Value)));
                break;
            case IfNode i:
                foreach (var (condition, body) in i.Branches)
                {
                    if (IsTrue(Eval(condition)))
                    {
                        Render(body);
                        return;
                    }
                }

                if (i.Else is not null)
                {
                    Render(i.Else);
                }

                break;
            case ForNode f:
                ExecuteFor(f);
                break;
            case SetNode s:
                var value = s.Value is not null ? Eval(s.Value) : Capture(s.Body!);
                Assign(s.Target, value, s.Line);
                break;
            case MacroNode m:
                _scopes[^1][m.Name] = MakeMacro(m);
                break;
            case LoopControlNode l:
                throw new LoopControl(l.IsBreak);
            case BlockNode b:
                Render(b.Body);
                break;
            default:
                throw new JinjaException($"line {node.Line}: cannot execute {node.GetType().Name}");
        }
    }

    private string Capture(List<Node> body)
    {
        var start = _output.Length;
        Render(body);
        var text = _output.ToString(start, _output.Length - start);
        _output.Length = start;
        return text;
    }

    private void Assign(Expr target, object? value, int line)
    {
        switch (target)
        {
            case Name n:
                _scopes[^1][n.Identifier] = value;
                break;
            case GetAttr { Target: var owner, Attribute: var attribute }:
                if (Eval(owner) is JinjaNamespace ns)
                {
                    ns[attribute] = value;
                    break;
                }

                throw new JinjaException($"line {line}: only namespace() objects can have attributes set");
            case ListExpr { Items: var names }:
                var values = Iterate(value).ToList();
                if (values.Count != names.Count)
                {
                    throw new JinjaException($"line {line}: cannot unpack {values.Count} values into {names.Count} names");
                }

                for (var i = 0; i < names.Count; i++)
                {
                    Assign(names[i], values[i], line);
                }

                break;
            default:
                throw new JinjaException($"line {line}: cannot assign to this expression");
        }
    }

    private void ExecuteFor(ForNode f)
    {
        var source = Eval(f.Iterable);
        var items = (source is Dictionary<string, object?> d ? d.Keys.Cast<object?>() : Iterate(source)).ToList();
        if (f.Filter is not null)
        {
            items = items.Where(item =>
            {
                _scopes.Add(new Dictionary<string, object?>(StringComparer.Ordinal));
                try
                {
                    Bind(f.Targets, item, f.Line);
                    return IsTrue(Eval(f.Filter));
                }
                finally
                {
                    _scopes.RemoveAt(_scopes.Count - 1);
                }
            }).ToList();
        }

        if (items.Count == 0)
        {
            if (f.Else is not null)
            {
                Render(f.Else);
            }

            return;
        }

        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        _scopes.Add(scope);
        try
        {
            for (var i = 0; i < items.Count; i++)
            {
                var index = i;
                scope["loop"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["index"] = (long)(i + 1),
                    ["index0"] = (long)i,
                    ["revindex"] = (long)(items.Count - i),
                    ["revindex0"] = (long)(items.Count - i - 1),
                    ["first"] = i == 0,
                    ["last"] = i == items.Count - 1,
                    ["length"] = (long)items.Count,
                    ["previtem"] = i > 0 ? items[i - 1] : Undefined.Instance,
                    ["nextitem"] = i + 1 < items.Count ? items[i + 1] : Undefined.Instance,
                    ["cycle"] = (JinjaCallable)((args, _) => args.Count == 0 ? null : args[index % args.Count]),
                };
                Bind(f.Targets, items[i], f.Line);
                try
                {
                    Render(f.Body);
                }
                catch (LoopControl control)
                {
                    if (control.IsBreak)
                    {
                        break;
                    }
                }
            }
        }
        finally
        {
            _scopes.RemoveAt(_scopes.Count - 1);
        }
    }

    private void Bind(List<string> targets, object? item, int line)
    {
        if (targets.Count == 1)
        {
            _scopes[^1][targets[0]] = item;
            return;
        }

        var values = Iterate(item).ToList();
        if (values.Count != targets.Count)
        {
            throw new JinjaException($"line {line}: cannot unpack {values.Count} values into {targets.Count} loop variables");
        }

        for (var i = 0; i < targets.Count; i++)
        {
            _scopes[^1][targets[i]] = values[i];
        }
    }

    private JinjaCallable MakeMacro(MacroNode m) => (args, kwargs) =>
    {
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        for (var i = 0; i < m.Parameters.Count; i++)
        {
            var (name, fallback) = m.Parameters[i];
            scope[name] = i < args.Count ? args[i] : kwargs.TryGetValue(name, out var v) ? v : fallback is null ? Undefined.Instance : Eval(fallback);
        }

        // Macros see the globals, not the caller's locals.
        var saved = _scopes.GetRange(1, _scopes.Count - 1);
        _scopes.RemoveRange(1, _scopes.Count - 1);
        _scopes.Add(scope);
        try
        {
            return Capture(m.Body);
        }
        finally
        {
            _scopes.RemoveRange(1, _scopes.Count - 1);
            _scopes.AddRange(saved);
        }
    };

    private object? Lookup(string name)
    {
        for (var i = _scopes.Count - 1; i >= 0; i--)
        {
            if (_scopes[i].TryGetValue(name, out var value))
            {
                return value;
            }
        }

        return Undefined.Instance;
    }

    public object? Eval(Expr expr)
    {
        switch (expr)
        {
            case Literal l:
                return l.Value;
            case Name n:
                return Lookup(n.Identifier);
            case ListExpr list:
                return list.Items.Select(Eval).ToList();
            case DictExpr dict:
                var result = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (key, value) in dict.Items)
                {
                    result[ToText(Eval(key))] = Eval(value);
                }

                return result;
            case GetAttr a:
                return GetAttribute(Eval(a.Target), a.Attribute);
            case GetItem g:
                return GetIndex(Eval(g.Target), Eval(g.Index));
            case Slice s:
                return SliceValue(Eval(s.Target), s.Start is null ? null : Eval(s.Start), s.Stop is null ? null : Eval(s.Stop), s.Step is null ? null : Eval(s.Step), s.Line);
            case Call c:
                return Invoke(c);
            case Filter f:
                return JinjaBuiltins.ApplyFilter(this, f.FilterName, Eval(f.Target), f.Args.Select(Eval).ToList(), f.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value)), f.Line);
            case Test t:
                var passed = JinjaBuiltins.ApplyTest(t.TestName, Eval(t.Target), t.Args.Select(Eval).ToList(), t.Line);
                return t.Negated ? !passed : passed;
            case Unary u:
                var operand = Eval(u.Operand);
                return u.Op switch
                {
                    "not" => !IsTrue(operand),
                    "-" => operand is long l ? -l : (object)-ToDouble(operand),
                    _ => operand,
                };
            case Binary b:
                return EvalBinary(b);
            case Conditional c:
                return IsTrue(Eval(c.Condition)) ? Eval(c.Then) : c.Else is null ? Undefined.Instance : Eval(c.Else);
            default:
                throw new JinjaException($"line {expr.Line}: cannot evaluate {expr.GetType().Name}");
        }
    }

    private object? Invoke(Call c)
    {
        var args = c.Args.Select(Eval).ToList();
        var kwargs = c.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value));
        if (c.Target is GetAttr method)
        {
            var owner = Eval(method.Target);
            if (owner is not JinjaNamespace && JinjaBuiltins.TryCallMethod(owner, method.Attribute, args, kwargs, c.Line, out var result))
            {
                return result;
            }
        }

        return Eval(c.Target) switch
        {
            JinjaCallable f => f(args, kwargs),
            Undefined => throw new JinjaException($"line {c.Line}: '{Describe(c.Target)}' is undefined and cannot be called"),
            var other => throw new JinjaException($"line {c.Line}: {TypeName(other)} is not callable"),
        };
    }

    private static string Describe(Expr e) => e switch
    {
        Name n => n.Identifier,
        GetAttr a => Describe(a.Target) + "." + a.Attribute,
        _ => "expression",
    };

    private object? EvalBinary(Binary b)
    {
        if (b.Op == "and")
        {
            var left = Eval(b.Left);
            return IsTrue(left) ? Eval(b.Right) : left;
        }

        if (b.Op == "or")
        {
            var left = Eval(b.Left);
            return IsTrue(left) ? left : Eval(b.Right);
        }

        var l = Eval(b.Left);
        var r = Eval(b.Right);
        return b.Op switch
        {
            "==" => Equal(l, r),
            "!=" => !Equal(l, r),
            "<" => Compare(l, r) < 0,
            ">" => Compare(l, r) > 0,
            "<=" => Compare(l, r) <= 0,
            ">=" => Compare(l, r) >= 0,
            "in" => Contains(r, l),
            "not in" => !Contains(r, l),
            "~" => ToText(l) + ToText(r),
            "+" => (l, r) switch
            {
                (string x, string y) => x + y,
                (List<object?> x, List<object?> y) => x.Concat(y).ToList(),
                (long x, long y) => x + y,
                (long or double or bool, long or double or bool) => ToDouble(l) + ToDouble(r),
                _ => throw new JinjaException($"line {b.Line}: cannot add {TypeName(l)} and {TypeName(r)}"),
            },
            "-" => l is long x1 && r is long y1 ? x1 - y1 : (object)(ToDouble(l) - ToDouble(r)),
            "*" => (l, r) switch
            {
                (string s, long n) => string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, n))),
                (long x, long y) => x * y,
                _ => ToDouble(l) * ToDouble(r),
            },
            "/" => ToDouble(l) / ToDouble(r),
            "//" => l is long x2 && r is long y2 ? (y2 == 0 ? throw new JinjaException($"line {b.Line}: division by zero") : (object)(long)Math.Floor((double)x2 / y2)) : Math.Floor(ToDouble(l) / ToDouble(r)),
            "%" => l is long x3 && r is long y3 ? (y3 == 0 ? throw new JinjaException($"line {b.Line}: division by zero") : (object)(((x3 % y3) + y3) % y3)) : ToDouble(l) % ToDouble(r),
            "**" => l is long x4 && r is long y4 && y4 >= 0 ? (long)Math.Pow(x4, y4) : (object)Math.Pow(ToDouble(l), ToDouble(r)),
            _ => throw new JinjaException($"line {b.Line}: unknown operator '{b.Op}'"),
        };
    }

    private static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string sub && s.Contains(sub, StringComparison.Ordinal),
        List<object?> list => list.Any(x => Equal(x, item)),
        Dictionary<string, object?> d => item is string key && d.ContainsKey(key),
        null or Undefined => false,
        _ => throw new JinjaException($"'in' needs a string, list or dict, not {TypeName(container)}"),
    };

    public static object? GetAttribute(object? target, string name) => target switch
    {
        Dictionary<string, object?> d => d.TryGetValue(name, out var v) ? v : Undefined.Instance,
        List<object?> list when int.TryParse(name, out var i) => GetIndex(list, (long)i),
        _ => Undefined.Instance,
    };

    public static object? GetIndex(object? target, object? index) => (target, index) switch
    {
        (Dictionary<string, object?> d, string key) => d.TryGetValue(key, out var v) ? v : Undefined.Instance,
        (Dictionary<string, object?> d, var key) when key is not Undefined => d.TryGetValue(ToText(key), out var v) ? v : Undefined.Instance,
        (List<object?> list, long i) => i < 0 ? (i + list.Count >= 0 ? list[(int)(i + list.Count)] : Undefined.Instance) : i < list.Count ? list[(int)i] : Undefined.Instance,
        (string s, long i) => i < 0 ? (i + s.Length >= 0 ? s[(int)(i + s.Length)].ToString() : Undefined.Instance) : i < s.Length ? s[(int)i].ToString() : Undefined.Instance,
        _ => Undefined.Instance,
    };

    private static object? SliceValue(object? target, object? start, object? stop, object? step, int line)
    {
        var n = target switch
        {
            List<object?> l => l.Count,
            string s => s.Length,
            _ => throw new JinjaException($"line {line}: cannot slice {TypeName(target)}"),
        };
        var st = step is long k ? k : 1;
        if (st == 0)
        {
            throw new JinjaException($"line {line}: slice step cannot be zero");
        }

        long Clamp(object? v, long fallback)
        {
            if (v is not long i)
            {
                return fallback;
            }

            if (i < 0)
            {
                i += n;
            }

            return st > 0 ? Math.Clamp(i, 0, n) : Math.Clamp(i, -1, n - 1);
        }

        var from = Clamp(start, st > 0 ? 0 : n - 1);
        var to = Clamp(stop, st > 0 ? n : -1);
        var indices = new List<int>();
        for (var i = from; st > 0 ? i < to : i > to; i += st)
        {
            indices.Add((int)i);
        }

        return target is string str ? string.Concat(indices.Select(i => str[i])) : indices.Select(i => ((List<object?>)target!)[i]).ToList();
    }
}
