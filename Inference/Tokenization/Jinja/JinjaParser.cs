using System.Globalization;

namespace AspireAi.Inference.Tokenization.Jinja;

/// <summary>Recursive-descent parser for the Jinja subset chat templates use, with Jinja2's operator precedence
/// (<c>parse_or → and → not → compare → + - → ~ → * / // % → ** → unary → primary with filters and tests</c>).</summary>
internal sealed class JinjaParser(List<JinjaToken> tokens)
{
    private int _pos;

    private JinjaToken Current => tokens[_pos];

    public List<Node> ParseTemplate()
    {
        var body = ParseBody(out var end);
        return end is null ? body : throw Error($"unexpected '{{% {end} %}}'");
    }

    /// <summary>Parses nodes until an unknown block keyword (returned, positioned after it) or the end of the template.</summary>
    private List<Node> ParseBody(out string? endKeyword, params string[] terminators)
    {
        var nodes = new List<Node>();
        while (true)
        {
            var token = Current;
            switch (token.Type)
            {
                case TokenType.End:
                    if (terminators.Length > 0)
                    {
                        throw Error($"template ends without {{% {terminators[^1]} %}}");
                    }

                    endKeyword = null;
                    return nodes;
                case TokenType.Text:
                    nodes.Add(new TextNode(token.Value, token.Line));
                    _pos++;
                    break;
                case TokenType.ExpressionStart:
                    _pos++;
                    nodes.Add(new OutputNode(ParseExpression(), token.Line));
                    Expect(TokenType.ExpressionEnd);
                    break;
                case TokenType.StatementStart:
                    _pos++;
                    var keyword = ExpectName();
                    if (terminators.Contains(keyword))
                    {
                        endKeyword = keyword;
                        return nodes;
                    }

                    nodes.Add(ParseStatement(keyword, token.Line));
                    break;
                default:
                    throw Error($"unexpected {token.Type}");
            }
        }
    }

    private Node ParseStatement(string keyword, int line)
    {
        switch (keyword)
        {
            case "if":
            {
                var branches = new List<(Expr, List<Node>)>();
                var condition = ParseExpression();
                Expect(TokenType.StatementEnd);
                List<Node>? elseBody = null;
                while (true)
                {
                    var body = ParseBody(out var end, "elif", "else", "endif");
                    branches.Add((condition, body));
                    if (end == "elif")
                    {
                        condition = ParseExpression();
                        Expect(TokenType.StatementEnd);
                        continue;
                    }

                    Expect(TokenType.StatementEnd);
                    if (end == "else")
                    {
                        elseBody = ParseBody(out _, "endif");
                        Expect(TokenType.StatementEnd);
                    }

                    return new IfNode(branches, elseBody, line);
                }
            }

            case "for":
            {
                var targets = new List<string> { ExpectName() };
                while (AcceptOperator(","))
                {
                    targets.Add(ExpectName());
                }

                if (ExpectName() != "in")
                {
                    throw Error("expected 'in' in for loop");
                }

                var iterable = ParseConditional(allowIf: false);
                Expr? filter = null;
                if (Current.Type == TokenType.Name && Current.Value == "if")
                {
                    _pos++;
                    filter = ParseOr();
                }

                if (Current.Type == TokenType.Name && Current.Value == "recursive")
                {
                    throw Error("recursive loops are not supported");
                }

                Expect(TokenType.StatementEnd);
                var body = ParseBody(out var end, "else", "endfor");
                Expect(TokenType.StatementEnd);
                List<Node>? elseBody = null;
                if (end == "else")
                {
                    elseBody = ParseBody(out _, "endfor");
                    Expect(TokenType.StatementEnd);
                }

                return new ForNode(targets, iterable, filter, body, elseBody, line);
            }

            case "set":
            {
                var target = ParsePrimary();
                while (AcceptOperator("."))
                {
                    target = new GetAttr(target, ExpectName(), line);
                }

                if (AcceptOperator("="))
                {
                    var value = ParseExpression();
                    Expect(TokenType.StatementEnd);
                    return new SetNode(target, value, null, line);
                }

                Expect(TokenType.StatementEnd);
                var body = ParseBody(out _, "endset");
                Expect(TokenType.StatementEnd);
                return new SetNode(target, null, body, line);
            }

            case "macro":
            {
                var name = ExpectName();
                ExpectOperator("(");
                var parameters = new List<(string, Expr?)>();
                while (!AcceptOperator(")"))
                {
                    var parameter = ExpectName();
                    parameters.Add((parameter, AcceptOperator("=") ? ParseExpression() : null));
                    if (!AcceptOperator(","))
                    {
                        ExpectOperator(")");
                        break;
                    }
                }

                Expect(TokenType.StatementEnd);
                var body = ParseBody(out _, "endmacro");
                Expect(TokenType.StatementEnd);
                return new MacroNode(name, parameters, body, line);
            }

            case "break" or "continue":
                Expect(TokenType.StatementEnd);
                return new LoopControlNode(keyword == "break", line);

            case "generation":
            {
                Expect(TokenType.StatementEnd);
                var body = ParseBody(out _, "endgeneration");
                Expect(TokenType.StatementEnd);
                return new BlockNode(body, line);
            }

            default:
                throw Error($"unknown or unsupported statement '{keyword}'");
        }
    }

    public Expr ParseExpression() => ParseConditional(allowIf: true);

    private Expr ParseConditional(bool allowIf)
    {
        var value = ParseOr();
        while (allowIf && Current.Type == TokenType.Name && Current.Value == "if")
        {
            var line = Current.Line;
            _pos++;
            var condition = ParseOr();
            Expr? otherwise = null;
            if (Current.Type == TokenType.Name && Current.Value == "else")
            {
                _pos++;
                otherwise = ParseConditional(allowIf: true);
            }

            value = new Conditional(condition, value, otherwise, line);
        }

        return value;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (AcceptName("or"))
        {
            left = new Binary("or", left, ParseAnd(), left.Line);
        }

        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (AcceptName("and"))
        {
            left = new Binary("and", left, ParseNot(), left.Line);
        }

        return left;
    }

    private Expr ParseNot() => AcceptName("not") ? new Unary("not", ParseNot(), Current.Line) : ParseCompare();

    private Expr ParseCompare()
    {
        var left = ParseMath1();
        while (true)
        {
            if (Current.Type == TokenType.Operator && Current.Value is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                var op = Current.Value;
                _pos++;
                left = new Binary(op, left, ParseMath1(), left.Line);
            }
            else if (AcceptName("in"))
            {
                left = new Binary("in", left, ParseMath1(), left.Line);
            }
            else if (Current.Type == TokenType.Name && Current.Value == "not" && tokens[_pos + 1].Type == TokenType.Name && tokens[_pos + 1].Value == "in")
            {
                _pos += 2;
                left = new Binary("not in", left, ParseMath1(), left.Line);
            }
            else
            {
                return left;
            }
        }
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Current.Type == TokenType.Operator && Current.Value is "+" or "-")
        {
            var op = Current.Value;
            _pos++;
            left = new Binary(op, left, ParseConcat(), left.Line);
        }

        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (AcceptOperator("~"))
        {
            left = new Binary("~", left, ParseMath2(), left.Line);
        }

        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (Current.Type == TokenType.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            var op = Current.Value;
            _pos++;
            left = new Binary(op, left, ParsePow(), left.Line);
        }

        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary();
        while (AcceptOperator("**"))
        {
            left = new Binary("**", left, ParseUnary(), left.Line);
        }

        return left;
    }

    private Expr ParseUnary()
    {
        if (Current.Type == TokenType.Operator && Current.Value is "-" or "+")
        {
            var op = Current.Value;
            var line = Current.Line;
            _pos++;
            return new Unary(op, ParseUnary(), line);
        }

        return ParseFilters(ParsePostfix(ParsePrimary()));
    }

    private Expr ParseFilters(Expr node)
    {
        while (true)
        {
            if (AcceptOperator("|"))
            {
                var name = ExpectName();
                var (args, kwargs) = Current.Type == TokenType.Operator && Current.Value == "(" ? ParseArguments() : ([], []);
                node = new Filter(node, name, args, kwargs, node.Line);
            }
            else if (AcceptName("is"))
            {
                var negated = AcceptName("not");
                var name = ExpectName();
                var args = new List<Expr>();
                if (Current.Type == TokenType.Operator && Current.Value == "(")
                {
                    args = ParseArguments().Args;
                }
                else if (Current.Type is TokenType.String or TokenType.Integer or TokenType.Float ||
                         (Current.Type == TokenType.Name && Current.Value is not ("and" or "or" or "else" or "if" or "in" or "not" or "is")))
                {
                    // 'x is equalto 3', 'x is sameas none': one argument without parentheses.
                    args = [ParsePostfix(ParsePrimary())];
                }

                node = new Test(node, name, args, negated, node.Line);
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (AcceptOperator("."))
            {
                node = new GetAttr(node, Current.Type == TokenType.Integer ? Next().Value : ExpectName(), node.Line);
            }
            else if (AcceptOperator("["))
            {
                Expr? start = null, stop = null, step = null;
                var isSlice = false;
                if (!(Current.Type == TokenType.Operator && Current.Value == ":"))
                {
                    start = ParseExpression();
                }

                if (AcceptOperator(":"))
                {
                    isSlice = true;
                    if (!(Current.Type == TokenType.Operator && Current.Value is "]" or ":"))
                    {
                        stop = ParseExpression();
                    }

                    if (AcceptOperator(":") && !(Current.Type == TokenType.Operator && Current.Value == "]"))
                    {
                        step = ParseExpression();
                    }
                }

                ExpectOperator("]");
                node = isSlice ? new Slice(node, start, stop, step, node.Line) : new GetItem(node, start!, node.Line);
            }
            else if (Current.Type == TokenType.Operator && Current.Value == "(")
            {
                var (args, kwargs) = ParseArguments();
                node = new Call(node, args, kwargs, node.Line);
            }
            else
            {
                return node;
            }
        }
    }

    private (List<Expr> Args, List<(string, Expr)> Kwargs) ParseArguments()
    {
        ExpectOperator("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (!AcceptOperator(")"))
        {
            if (Current.Type == TokenType.Name && tokens[_pos + 1] is { Type: TokenType.Operator, Value: "=" })
            {
                var name = Next().Value;
                _pos++;
                kwargs.Add((name, ParseExpression()));
            }
            else
            {
                args.Add(ParseExpression());
            }

            if (!AcceptOperator(","))
            {
                ExpectOperator(")");
                break;
            }
        }

        return (args, kwargs);
    }

    private Expr ParsePrimary()
    {
        var token = Next();
        switch (token.Type)
        {
            case TokenType.String:
                var text = token.Value;
                // Adjacent string literals concatenate, as in Python.
                while (Current.Type == TokenType.String)
                {
                    text += Next().Value;
                }

                return new Literal(text, token.Line);
            case TokenType.Integer:
                return new Literal(long.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case TokenType.Float:
                return new Literal(double.Parse(token.Value, CultureInfo.InvariantCulture), token.Line);
            case TokenType.Name:
                return token.Value switch
                {
                    "true" or "True" => new Literal(true, token.Line),
                    "false" or "False" => new Literal(false, token.Line),
                    "none" or "None" => new Literal(null, token.Line),
                    _ => new Name(token.Value, token.Line),
                };
            case TokenType.Operator when token.Value == "(":
            {
                if (AcceptOperator(")"))
                {
                    return new ListExpr([], token.Line);
                }

                var first = ParseExpression();
                if (!AcceptOperator(","))
                {
                    ExpectOperator(")");
                    return first;
                }

                // A tuple: evaluated as a list.
                var items = new List<Expr> { first };
                while (!AcceptOperator(")"))
                {
                    items.Add(ParseExpression());
                    if (!AcceptOperator(","))
                    {
                        ExpectOperator(")");
                        break;
                    }
                }

                return new ListExpr(items, token.Line);
            }

            case TokenType.Operator when token.Value == "[":
            {
                var items = new List<Expr>();
                while (!AcceptOperator("]"))
                {
                    items.Add(ParseExpression());
                    if (!AcceptOperator(","))
                    {
                        ExpectOperator("]");
                        break;
                    }
                }

                return new ListExpr(items, token.Line);
            }

            case TokenType.Operator when token.Value == "{":
            {
                var items = new List<(Expr, Expr)>();
                while (!AcceptOperator("}"))
                {
                    var key = ParseExpression();
                    ExpectOperator(":");
                    items.Add((key, ParseExpression()));
                    if (!AcceptOperator(","))
                    {
                        ExpectOperator("}");
                        break;
                    }
                }

                return new DictExpr(items, token.Line);
            }

            default:
                throw new JinjaException($"line {token.Line}: unexpected {(token.Type == TokenType.Operator ? $"'{token.Value}'" : token.Type.ToString())} in expression");
        }
    }

    private JinjaToken Next() => tokens[_pos++];

    private JinjaException Error(string message) => new($"line {Current.Line}: {message}");

    private void Expect(TokenType type)
    {
        if (Current.Type != type)
        {
            throw Error($"expected {type}, found {(Current.Type is TokenType.Name or TokenType.Operator ? $"'{Current.Value}'" : Current.Type.ToString())}");
        }

        _pos++;
    }

    private string ExpectName() => Current.Type == TokenType.Name ? Next().Value : throw Error($"expected a name, found {Current.Type} '{Current.Value}'");

    private void ExpectOperator(string op)
    {
        if (!AcceptOperator(op))
        {
            throw Error($"expected '{op}', found '{Current.Value}'");
        }
    }

    private bool AcceptOperator(string op)
    {
        if (Current.Type == TokenType.Operator && Current.Value == op)
        {
            _pos++;
            return true;
        }

        return false;
    }

    private bool AcceptName(string name)
    {
        if (Current.Type == TokenType.Name && Current.Value == name)
        {
            _pos++;
            return true;
        }

        return false;
    }
}
