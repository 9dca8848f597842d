# debuglink.cmake - moves LIB's DWARF into DIR/.debug/NAME.debug and leaves
# LIB a .gnu_debuglink to it (name and CRC), as distributions did before
# build-ids. With OTHER, the debug file is then replaced by OTHER's: another
# build-id and another CRC, which a careful search must refuse.
get_filename_component(name ${LIB} NAME)
get_filename_component(dir ${LIB} DIRECTORY)
file(MAKE_DIRECTORY ${dir}/.debug)
set(dbg ${dir}/.debug/${name}.debug)
execute_process(COMMAND ${OBJCOPY} --only-keep-debug ${LIB} ${dbg}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "debuglink: objcopy --only-keep-debug failed")
endif()
execute_process(COMMAND ${OBJCOPY} --strip-debug --add-gnu-debuglink=${dbg}
  ${LIB} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "debuglink: objcopy --add-gnu-debuglink failed")
endif()
if(OTHER)
  execute_process(COMMAND ${OBJCOPY} --only-keep-debug ${OTHER} ${dbg}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "debuglink: objcopy --only-keep-debug ${OTHER} failed")
  endif()
endif()
