/* transport.c: opening and closing a link of any transport (transport.h). */
#include <string.h>

#include "transport.h"

void pdrt_link_open(pdrt_link *l, const pdrt_transport *t, int peer, const pdrt_link_env *env) {
    memset(l, 0, sizeof *l);
    l->t = t;
    l->peer = peer;
    l->comm = env->comm;
    t->setup(l, env);
}

void pdrt_link_close(pdrt_link *l) {
    if (l->t) l->t->close(l);
    memset(l, 0, sizeof *l);
}
