// Half of the literal probe: the same literal as literal_b.cc, in another
// translation unit.
const char* literal_probe_a() { return "boxlite-layout literal probe"; }
