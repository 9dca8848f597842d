/* trace_demo.c - the smallest in-process use of heapsnap: trace a few
 * allocations, print the traced totals and the stack of one live block. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heapsnap.h"

struct node {
  struct node *next;
  char payload[48];
};

struct node *make_node(struct node *next);
struct node *build_list(int count);

__attribute__((noinline)) struct node *make_node(struct node *next) {
  struct node *n = malloc(sizeof *n);
  if (n) {
    n->next = next;
    memset(n->payload, 'x', sizeof n->payload);
  }
  return n;
}

__attribute__((noinline)) struct node *build_list(int count) {
  struct node *head = NULL;
  for (int i = 0; i < count; i++)
    head = make_node(head);
  return head;
}

int main(void) {
  if (hs_start(HS_DEFAULT_FRAMES) != 0)
    return 1;
  struct node *list = build_list(1000);
  char *label = strdup("one thousand nodes");

  size_t current, peak;
  hs_get_traced_memory(&current, &peak);
  hs_stats_t st;
  hs_get_stats(&st, sizeof st);
  printf("traced: current=%zu B, peak=%zu B, live blocks=%llu, stacks=%llu, "
         "tracer memory=%zu B\n",
         current, peak, (unsigned long long)st.live_traces,
         (unsigned long long)st.stacks, hs_get_tracer_memory());

  uintptr_t frames[HS_DEFAULT_FRAMES];
  int n = hs_get_object_traceback(list, frames, HS_DEFAULT_FRAMES);
  printf("stack of the list head (%d frames, most recent first):\n", n);
  for (int i = 0; i < n; i++) {
    Dl_info info;
    const char *fn = "??";
    if (dladdr((void *)frames[i], &info) && info.dli_sname)
      fn = info.dli_sname;
    printf("  #%d 0x%012lx %s\n", i, (unsigned long)frames[i], fn);
  }

  while (list) {
    struct node *next = list->next;
    free(list);
    list = next;
  }
  free(label);
  hs_get_traced_memory(&current, &peak);
  printf("after freeing: current=%zu B, peak=%zu B\n", current, peak);
  hs_stop();
  return 0;
}
