/* plan_draw.c: a plan as a picture (pdplan --draw): the layer graph in Graphviz DOT, each stage a
 * coloured cluster labelled with its replicas, time and memory, each edge that crosses a cut
 * labelled with the bytes of its tensor. `dot -Tsvg plan.dot` renders it. */
#include "plan_draw.h"

#include <stdlib.h>

static const char *const palette[] = {"#dbe9f6", "#fde0c5", "#d9f0d3", "#e7d4e8",
                                      "#fff2ae", "#d0f0f0", "#f4cccc", "#e0e0e0"};

static void put_id(FILE *out, const char *s) {
    fputc('"', out);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', out);
        if (*s == '\n') fputs("\\n", out);
        else fputc(*s, out);
    }
    fputc('"', out);
}

static void human(char *buf, size_t n, double b) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int k = 0;
    while (b >= 1024 && k < 4) b /= 1024, k++;
    snprintf(buf, n, k ? "%.1f %s" : "%.0f %s", b, u[k]);
}

int pd_plan_write_dot(FILE *out, const pd_costgraph *g, const pd_plan *p, const char *title) {
    int *stage_of = malloc(sizeof(int) * (size_t)(g->n > 0 ? g->n : 1));
    if (!stage_of) return -1;
    for (int v = 0; v < g->n; v++) stage_of[v] = -1;
    for (int s = 0; s < p->n_stages; s++)
        for (int k = 0; k < p->stages[s].n_nodes; k++) stage_of[p->stages[s].nodes[k]] = s;
    char name[32];
    fprintf(out, "digraph plan {\n  graph [rankdir=TB, fontname=\"sans-serif\", label=");
    put_id(out, title);
    fprintf(out, ", labelloc=t];\n  node [shape=box, style=\"rounded,filled\", fillcolor=white, "
                 "fontname=\"sans-serif\", fontsize=10];\n  edge [fontname=\"sans-serif\", "
                 "fontsize=9];\n");
    for (int s = 0; s < p->n_stages; s++) {
        const pd_stage *st = &p->stages[s];
        char mem[32];
        human(mem, sizeof mem, st->memory_bytes);
        fprintf(out, "  subgraph cluster_%d {\n    style=filled; color=\"#666666\"; "
                     "fillcolor=\"%s\";\n    label=\"stage %d: %d replica%s, %.3f ms, %s\";\n",
                s, palette[s % 8], s, st->replicas, st->replicas == 1 ? "" : "s", st->time_ms,
                mem);
        for (int k = 0; k < st->n_nodes; k++) {
            int v = st->nodes[k];
            fprintf(out, "    n%d [label=", v);
            if (g->name && g->name[v]) put_id(out, g->name[v]);
            else {
                snprintf(name, sizeof name, "node %d", v);
                put_id(out, name);
            }
            fprintf(out, "];\n");
        }
        fprintf(out, "  }\n");
    }
    for (int v = 0; v < g->n; v++)
        if (stage_of[v] < 0) fprintf(out, "  n%d;\n", v);
    for (int e = 0; e < g->n_edges; e++) {
        int u = g->src[e], v = g->dst[e];
        fprintf(out, "  n%d -> n%d", u, v);
        if (stage_of[u] != stage_of[v]) {
            char b[32];
            human(b, sizeof b, g->act_bytes[u]);
            fprintf(out, " [label=\"%s\", color=\"#c0392b\", fontcolor=\"#c0392b\", penwidth=2]",
                    b);
        }
        fprintf(out, ";\n");
    }
    fprintf(out, "}\n");
    free(stage_of);
    return ferror(out) ? -1 : 0;
}
