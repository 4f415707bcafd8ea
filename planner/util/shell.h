/* shell.h: shell quoting, for command lines written into generated files. */
#ifndef PD_SHELL_H
#define PD_SHELL_H

/* "PROG ARG1 ARG2 ..." with each argument single-quoted where the shell needs it (an argument of
 * letters, digits and _-+=./,:@ only stays bare). Returns a malloc'd string, NULL when out of
 * memory. */
char *pd_shell_command_line(const char *prog, int argc, char **argv);

#endif
