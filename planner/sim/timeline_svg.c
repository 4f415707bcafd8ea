/* timeline_svg.c: the simulated timeline of a run as an SVG picture (pd_sim_timeline_svg), so
 * that a person sees the pipeline: one row per rank, forwards, backwards, all-reduces and
 * transfers in distinct colours, the warm-up, the steady 1F1B state and the drain (bubbles are
 * the gaps). Plain SVG 1.1 written with fprintf; no library. */
#include <math.h>
#include <stdio.h>

#include "simulate.h"

#define LEFT 120.0  /* px: the row labels */
#define PLOT 1100.0 /* px: the time axis */
#define ROW 22.0    /* px per rank */
#define TOP 56.0    /* px: title and legend */

static const char *const fill[PD_SIM_EV_COUNT] = {"#4c78a8", "#f58518", "#54a24b", "#b279a2",
                                                   "#bab0ac", "#e45756"};
static const char *const label[PD_SIM_EV_COUNT] = {"forward", "backward (zb: input)",
                                                    "all-reduce", "transfer (sender)",
                                                    "other (step)", "backward_weight (zb)"};

/* a round step for about 8 ticks over [0, t] */
static double tick_step(double t) {
    double raw = t / 8, p = pow(10, floor(log10(raw > 0 ? raw : 1)));
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

int pd_sim_timeline_svg(FILE *out, const pd_sim_timeline *tl, int n_ranks, const int *rank_stage,
                        const char *title) {
    double end = 0;
    for (int i = 0; i < tl->n; i++)
        if (tl->ev[i].t0 + tl->ev[i].dur > end) end = tl->ev[i].t0 + tl->ev[i].dur;
    if (!(end > 0)) end = 1;
    double sx = PLOT / end, H = TOP + ROW * n_ranks + 40, W = LEFT + PLOT + 20;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                 "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
            W, H, W, H);
    fprintf(out, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(out, "<text x=\"8\" y=\"18\" font-size=\"14\">");
    for (const char *c = title; c && *c; c++) /* escape the title */
        if (*c == '<') fputs("&lt;", out);
        else if (*c == '&') fputs("&amp;", out);
        else fputc(*c, out);
    fprintf(out, "</text>\n");
    for (int k = 0; k < PD_SIM_EV_COUNT; k++) {
        double x = 8 + 150.0 * k;
        fprintf(out, "<rect x=\"%.0f\" y=\"28\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                     "<text x=\"%.0f\" y=\"38\">%s</text>\n", x, fill[k], x + 16, label[k]);
    }
    for (int r = 0; r < n_ranks; r++) { /* rows: stages shaded alternately */
        double y = TOP + ROW * r;
        int st = rank_stage ? rank_stage[r] : 0;
        fprintf(out, "<rect x=\"%.0f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"%s\"/>\n",
                LEFT, y, PLOT, ROW, st % 2 ? "#f2f2f2" : "#fafafa");
        fprintf(out, "<text x=\"8\" y=\"%.1f\">rank %d (stage %d)</text>\n", y + 15, r, st);
    }
    for (int i = 0; i < tl->n; i++) {
        const pd_sim_event *e = &tl->ev[i];
        if (e->rank < 0 || e->rank >= n_ranks) continue;
        int k = e->kind >= 0 && e->kind < PD_SIM_EV_COUNT ? e->kind : PD_SIM_EV_OTHER;
        double x = LEFT + e->t0 * sx, w = e->dur * sx, y = TOP + ROW * e->rank;
        double h = k == PD_SIM_EV_TRANSFER ? 4 : ROW - 8, yy = k == PD_SIM_EV_TRANSFER ? y + 17 : y + 2;
        if (w < 0.3) w = 0.3;
        fprintf(out, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.0f\" fill=\"%s\" "
                     "stroke=\"white\" stroke-width=\"0.3\"><title>rank %d %s mb %d: %.3f + "
                     "%.3f ms</title></rect>\n",
                x, yy, w, h, fill[k], e->rank, label[k], e->mb, e->t0, e->dur);
        if ((k <= PD_SIM_EV_BACKWARD || k == PD_SIM_EV_WEIGHT) && w >= 14)
            fprintf(out, "<text x=\"%.2f\" y=\"%.1f\" fill=\"white\" font-size=\"9\" "
                         "text-anchor=\"middle\">%d</text>\n", x + w / 2, y + 14, e->mb);
    }
    double ay = TOP + ROW * n_ranks + 4, step = tick_step(end);
    fprintf(out, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"black\"/>\n",
            LEFT, ay, LEFT + PLOT, ay);
    for (double t = 0; t <= end * (1 + 1e-9); t += step)
        fprintf(out, "<line x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"black\"/>"
                     "<text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                LEFT + t * sx, ay, LEFT + t * sx, ay + 4, LEFT + t * sx, ay + 16, t);
    fprintf(out, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">ms</text>\n", LEFT + PLOT,
            ay + 30);
    fprintf(out, "</svg>\n");
    return ferror(out) ? -1 : 0;
}
