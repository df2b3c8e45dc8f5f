namespace AspireAi.Inference.Tokenization.Jinja;

internal abstract record Node(int Line);

// Statements
internal sealed record TextNode(string Text, int Line) : Node(Line);
internal sealed record OutputNode(Expr Value, int Line) : Node(Line);
internal sealed record IfNode(List<(Expr Condition, List<Node> Body)> Branches, List<Node>? Else, int Line) : Node(Line);
internal sealed record ForNode(List<string> Targets, Expr Iterable, Expr? Filter, List<Node> Body, List<Node>? Else, int Line) : Node(Line);
internal sealed record SetNode(Expr Target, Expr? Value, List<Node>? Body, int Line) : Node(Line);
internal sealed record MacroNode(string Name, List<(string Name, Expr? Default)> Parameters, List<Node> Body, int Line) : Node(Line);
internal sealed record LoopControlNode(bool IsBreak, int Line) : Node(Line);
/// <summary>A block whose tags are dropped and body kept (<c>{% generation %}</c> in some assistant-mask templates).</summary>
internal sealed record BlockNode(List<Node> Body, int Line) : Node(Line);

// Expressions
internal abstract record Expr(int Line);
internal sealed record Literal(object? Value, int Line) : Expr(Line);
internal sealed record Name(string Identifier, int Line) : Expr(Line);
internal sealed record ListExpr(List<Expr> Items, int Line) : Expr(Line);
internal sealed record DictExpr(List<(Expr Key, Expr Value)> Items, int Line) : Expr(Line);
internal sealed record GetAttr(Expr Target, string Attribute, int Line) : Expr(Line);
internal sealed record GetItem(Expr Target, Expr Index, int Line) : Expr(Line);
internal sealed record Slice(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line) : Expr(Line);
internal sealed record Call(Expr Target, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr(Line);
internal sealed record Filter(Expr Target, string FilterName, List<Expr> Args, List<(string Name, Expr Value)> Kwargs, int Line) : Expr(Line);
internal sealed record Test(Expr Target, string TestName, List<Expr> Args, bool Negated, int Line) : Expr(Line);
internal sealed record Unary(string Op, Expr Operand, int Line) : Expr(Line);
internal sealed record Binary(string Op, Expr Left, Expr Right, int Line) : Expr(Line);
internal sealed record Conditional(Expr Condition, Expr Then, Expr? Else, int Line) : Expr(Line);
