/* curves.c: the run's learning curves, what a person looks at first: the training loss (one point
 * per progress line) and every evaluation (test accuracy, or a token model's validation loss),
 * each at its step and its wall time since training began. Written as run/curves.svg, four
 * panels (training loss and the evaluation, against steps and against seconds), plain SVG 1.1
 * with fprintf; and listed in summary.json's "evaluations". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static void push(pdrt_point **p, int *n, int *cap, int64_t step, double t, double v, double v2) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 64;
        pdrt_point *q = realloc(*p, (size_t)c * sizeof **p);
        PDRT_CHECK(q != NULL);
        *p = q;
        *cap = c;
    }
    (*p)[(*n)++] = (pdrt_point){step, t, v, v2};
}

void pdrt_curves_add_loss(pdrt_curves *c, int64_t step, double t, double loss) {
    if (c) push(&c->loss, &c->n_loss, &c->cap_loss, step, t, loss, 0);
}

void pdrt_curves_add_eval(pdrt_curves *c, int64_t step, double t, double acc, double val_loss) {
    if (c) push(&c->eval, &c->n_eval, &c->cap_eval, step, t, acc, val_loss);
}

void pdrt_curves_free(pdrt_curves *c) {
    free(c->loss);
    free(c->eval);
    memset(c, 0, sizeof *c);
}

/* a round step for about n ticks over [lo, hi] */
static double tick_step(double lo, double hi, int n) {
    double raw = (hi - lo) / n, p = pow(10, floor(log10(raw > 0 ? raw : 1)));
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

#define PW 420.0 /* px: a panel's plot area */
#define PH 220.0
#define ML 64.0  /* px: left margin (the y labels), top, gap between panels */
#define MT 48.0
#define GAP 56.0

/* One panel at (x0, y0): the points' value (which 0: v, 1: v2) against the step (by_time 0) or
 * the time (1), with axes, round ticks and a title. */
static void panel(FILE *f, double x0, double y0, const pdrt_point *p, int n, int which,
                  int by_time, const char *title, const char *colour) {
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"13\">%s</text>\n", x0, y0 - 8, title);
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
               "stroke=\"#999\"/>\n", x0, y0, PW, PH);
    if (n == 0) {
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" fill=\"#777\">no points</text>\n", x0 + 12, y0 + 24);
        return;
    }
    double xlo = 0, xhi = 0, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < n; i++) {
        double x = by_time ? p[i].t : (double)p[i].step, y = which ? p[i].v2 : p[i].v;
        if (x > xhi) xhi = x;
        if (isfinite(y) && y < ylo) ylo = y;
        if (isfinite(y) && y > yhi) yhi = y;
    }
    if (!(xhi > xlo)) xhi = xlo + 1;
    if (!isfinite(ylo)) ylo = 0, yhi = 1;
    if (!(yhi > ylo)) ylo -= 0.5, yhi += 0.5;
    double pad = 0.05 * (yhi - ylo);
    ylo -= pad;
    yhi += pad;
    double sx = PW / (xhi - xlo), sy = PH / (yhi - ylo);
    double dx = tick_step(xlo, xhi, 6), dy = tick_step(ylo, yhi, 5);
    for (double x = ceil(xlo / dx) * dx; x <= xhi + 1e-9 * dx; x += dx) {
        double px = x0 + (x - xlo) * sx;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#e4e4e4\"/>"
                   "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%g</text>\n",
                px, y0, px, y0 + PH, px, y0 + PH + 14, x);
    }
    for (double y = ceil(ylo / dy) * dy; y <= yhi + 1e-9 * dy; y += dy) {
        double py = y0 + PH - (y - ylo) * sy;
        fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
                x0, py, x0 + PW, py, x0 - 4, py + 4, fabs(y) < 1e-12 * dy ? 0.0 : y);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#555\">%s</text>\n",
            x0 + PW / 2, y0 + PH + 30, by_time ? "seconds (evaluations included)" : "steps");
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colour);
    for (int i = 0; i < n; i++) {
        double x = by_time ? p[i].t : (double)p[i].step, y = which ? p[i].v2 : p[i].v;
        if (isfinite(y)) fprintf(f, "%.1f,%.1f ", x0 + (x - xlo) * sx, y0 + PH - (y - ylo) * sy);
    }
    fprintf(f, "\"/>\n");
    for (int i = 0; i < n; i++) { /* a dot at each point: evaluations are few */
        double x = by_time ? p[i].t : (double)p[i].step, y = which ? p[i].v2 : p[i].v;
        if (isfinite(y) && n <= 200)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\"/>\n",
                    x0 + (x - xlo) * sx, y0 + PH - (y - ylo) * sy, colour);
    }
}

void pdrt_curves_write_svg(const char *dir, const pdrt_curves *c, const char *title) {
    char path[4200];
    pdrt_out o;
    snprintf(path, sizeof path, "%s/curves.svg", dir);
    FILE *f = pdrt_out_open(&o, path);
    double W = ML + 2 * PW + GAP + 24, H = MT + 2 * (PH + 24) + GAP + 40;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"11\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"8\" y=\"20\" "
               "font-size=\"15\">", W, H, W, H);
    for (const char *s = title; s && *s; s++) /* escape the title */
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    fprintf(f, "</text>\n");
    const char *ev = c->eval_is_loss ? "validation loss (nats per token)" : "test accuracy";
    double x1 = ML, x2 = ML + PW + GAP, y1 = MT, y2 = MT + PH + 24 + GAP;
    panel(f, x1, y1, c->loss, c->n_loss, 0, 0, "training loss", "#4c78a8");
    panel(f, x2, y1, c->loss, c->n_loss, 0, 1, "training loss", "#4c78a8");
    panel(f, x1, y2, c->eval, c->n_eval, c->eval_is_loss, 0, ev, "#f58518");
    panel(f, x2, y2, c->eval, c->n_eval, c->eval_is_loss, 1, ev, "#f58518");
    fprintf(f, "</svg>\n");
    pdrt_out_commit(&o);
}
