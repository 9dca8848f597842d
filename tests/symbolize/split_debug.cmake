# split_debug.cmake - moves LIB's DWARF into OUT/.build-id/xx/yyyy.debug and
# strips it from LIB, as Debian's -dbgsym packages do (no debuglink, so only
# the build-id lookup can find it).
execute_process(COMMAND ${READELF} -n ${LIB} OUTPUT_VARIABLE notes
  RESULT_VARIABLE rc)
string(REGEX MATCH "Build ID: ([0-9a-f]+)" m "${notes}")
if(NOT rc EQUAL 0 OR NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "split_debug: no build-id in ${LIB}")
endif()
string(SUBSTRING ${CMAKE_MATCH_1} 0 2 head)
string(SUBSTRING ${CMAKE_MATCH_1} 2 -1 tail)
file(MAKE_DIRECTORY ${OUT}/.build-id/${head})
execute_process(COMMAND ${OBJCOPY} --only-keep-debug ${LIB}
  ${OUT}/.build-id/${head}/${tail}.debug RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "split_debug: objcopy --only-keep-debug failed")
endif()
execute_process(COMMAND ${OBJCOPY} --strip-debug ${LIB} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "split_debug: objcopy --strip-debug failed")
endif()
