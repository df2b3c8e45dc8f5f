namespace AspireAi.Retrieval.Tests;

/// <summary>Small real-language documents whose topics do not overlap, so that a relevant hit is unambiguous.</summary>
internal static class Corpus
{
    public const string Volcanoes =
        "Volcanoes form where molten rock rises through the crust. Magma chambers feed eruptions of lava, ash and gas. " +
        "Stratovolcanoes such as Mount Fuji are built from alternating layers of hardened lava and tephra.";

    public const string Baking =
        "Bread dough rises because yeast ferments sugars and releases carbon dioxide. Kneading develops gluten, " +
        "which traps the gas. Bake the loaf in a hot oven until the crust is golden and it sounds hollow when tapped.";

    public const string Chess =
        "In chess, castling moves the king two squares towards a rook, and the rook jumps over the king. " +
        "It is allowed only if neither piece has moved and the king is not in check.";

    public const string Astronomy =
        "A light-year is the distance light travels in one year, about 9.46 trillion kilometres. " +
        "Proxima Centauri, the nearest star to the Sun, is roughly 4.24 light-years away.";
}
